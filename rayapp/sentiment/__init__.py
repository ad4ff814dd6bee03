"""Sentiment scoring: CryptoBERT (or the VADER lexicon fallback) on Ray Data actor pools.

Modules: `model` (resolution, loading, provenance), `scorer` (the map_batches callable class),
`vader` (fallback), `pool` (actor pool sizing and the Ray Data plan), `pipeline` (`rayapp score`),
`evaluate` (`rayapp sentiment-eval`), `localmodel` (a locally built model of the same
architecture for tests and benchmarks). Nothing is imported here, so that importing the package
does not pull in torch.
"""
