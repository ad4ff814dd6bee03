"""The per-source ingest summary a person reads: a table, each source's first error whole below
it, the same as JSON; never a dataclass repr."""

from __future__ import annotations

import json

from rich.console import Console

from rayapp.ingest import SourceSummary, print_summaries, summaries_json

LONG = (
    "BTCUSDT 2026-10-02 06:00..2026-10-04 00:00: binance: gave up after 5 attempts: binance: DNS failure: "
    "cannot resolve api.binance.com (Temporary failure in name resolution) (https://api.binance.com/api/v3/klines)"
)


def summaries() -> list[SourceSummary]:
    return [
        SourceSummary(source="binance", table="candles", requests=5, errors=[LONG, "second window: the same again"]),
        SourceSummary(source="fear_greed", table="market_index", read=31, inserted=30, unchanged=1, requests=1),
        SourceSummary(source="reddit", table="articles,social_counts", note="skipped: no credentials"),
    ]


def rendered(width: int = 80) -> str:
    console = Console(record=True, width=width, color_system=None)
    print_summaries(console, summaries(), "ingest (3 partitions)")
    return console.export_text()


def test_a_table_then_each_failed_sources_first_error_whole_on_its_own_line() -> None:
    text = rendered()
    lines = text.splitlines()
    header = next(line for line in lines if "source" in line and "quarantined" in line)
    for col in ("source", "read", "written", "quarantined", "skipped", "errors", "status"):
        assert col in header
    binance_row = next(line for line in lines if line.split()[:1] == ["binance"])
    assert binance_row.split()[1:] == ["0", "0", "0", "0", "0", "2", "failed"]  # two errors, counted
    # the first error, whole, on one line of its own, wider than the terminal
    assert f"error binance: {LONG} (+1 more)" in lines
    assert "second window" not in text  # the first one only
    assert "fear_greed" in text and "skipped:" in text  # the note folds inside its cell
    assert "SourceSummary(" not in text


def test_json_is_the_same_with_every_error() -> None:
    rows = json.loads(json.dumps(summaries_json(summaries())))
    assert [r["source"] for r in rows] == ["binance", "fear_greed", "reddit"]
    b, f, _ = rows
    assert (b["ok"], b["first_error"], b["errors"]) == (False, LONG, [LONG, "second window: the same again"])
    assert (f["ok"], f["read"], f["written"], f["unchanged"], f["quarantined"], f["skipped"]) == (True, 31, 30, 1, 0, 0)


def test_a_summary_in_text_reads_as_words_not_a_repr() -> None:
    b, f, r = summaries()
    assert str(b) == (f"binance: read 0, written 0, unchanged 0, quarantined 0, skipped 0; failed: {LONG} (+1 more)")
    assert str(f) == "fear_greed: read 31, written 30, unchanged 1, quarantined 0, skipped 0"
    assert str(r).endswith("; skipped: no credentials")
    assert "SourceSummary(" not in f"{b} {f} {r}"
