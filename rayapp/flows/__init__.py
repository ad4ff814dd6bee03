"""The application layer: runs that cross stages (the demo, ingest followed by the feature
refresh; later the scheduler and the model lifecycle).

Flows call each stage through its public API and meet the data only through the stores; stage
packages never import flows.
"""
