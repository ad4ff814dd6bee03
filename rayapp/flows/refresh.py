"""Ingest, then the feature refresh: what keeps the online vector current after new data lands.

`run_refresh` is the scheduler's `refresh` job: ingest every enabled source (validated into
silver, bad rows quarantined) → score the new text → rebuild the newest feature rows → write the
online vector. It reports every stage's counts and errors instead of raising, so one source that
is down is a partial run whose other sources' rows still land.

`ingest_and_refresh` runs the ingest fan-out and, when new candles were written, rebuilds the
newest feature rows and writes the online vector. A feature failure after a successful ingest is
reported (logged and returned), never raised: the ingested rows are in silver either way, and
the next refresh repairs the features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.features import BuildSummary
    from rayapp.ingest import IngestReport, Partition, Plan, SourceSummary
    from rayapp.sentiment import ScoreSummary

log = get_logger(__name__)


@dataclass
class RefreshReport:
    ingest: IngestReport
    features: list[BuildSummary] = field(default_factory=list)
    feature_error: str | None = None  # why the features were not refreshed, if they were due
    score: ScoreSummary | None = None
    score_error: str | None = None

    @property
    def new_candles(self) -> bool:
        return any("candles" in s.table.split(",") and s.written for s in self.ingest.summaries.values())


def refresh_features(settings: Settings) -> tuple[list[BuildSummary], str | None]:
    """The newest feature rows and the online (Redis) vector from what is in silver now."""
    from rayapp.features import update_after_ingest

    try:
        summaries = update_after_ingest(settings)
    except Exception as exc:  # the ingest itself succeeded; a feature failure is reported, not fatal
        error = f"{type(exc).__name__}: {exc}"
        log.warning("online features not refreshed", error=error)
        return [], error
    log.info("online features refreshed", symbols=len(summaries), online_ts=[s.online_ts for s in summaries])
    return summaries, None


def ingest_and_refresh(
    settings: Settings,
    *,
    start: Any = None,
    end: Any = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_partition: Callable[[Partition, SourceSummary], None] | None = None,
    always_refresh: bool = False,
) -> RefreshReport:
    """Ingest every enabled source; refresh the features when candles were written (or always)."""
    from rayapp.ingest import run_ingest

    report = RefreshReport(run_ingest(settings, start=start, end=end, on_plan=on_plan, on_partition=on_partition))
    if report.new_candles or always_refresh:
        report.features, report.feature_error = refresh_features(settings)
    return report


TEXT_TABLES = ("articles", "social_counts")


def run_refresh(settings: Settings) -> RefreshReport:
    """ingest → score new text → newest feature rows + online vector (the `refresh` job).

    A stage runs when the one before gave it something new: scoring when text was written,
    the features when candles were written or text was scored. The ingest itself raises only
    when it cannot start (the warehouse is down); a source's failure is in its summary.
    """
    from rayapp.ingest import run_ingest

    report = RefreshReport(run_ingest(settings))
    wrote_text = any(
        set(s.table.split(",")).intersection(TEXT_TABLES) and s.written for s in report.ingest.summaries.values()
    )
    if wrote_text:
        from rayapp.sentiment import run_score

        try:
            report.score = run_score(settings)
        except Exception as exc:  # reported with the run; the next refresh scores what is left
            report.score_error = f"{type(exc).__name__}: {exc}"
            log.warning("sentiment not scored", error=report.score_error)
    if report.new_candles or (report.score is not None and report.score.scored):
        report.features, report.feature_error = refresh_features(settings)
    return report
