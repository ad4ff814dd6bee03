"""What a run that brings source data in checks before it fetches anything.

1. The state directory of its sources mode (`rayapp.flows.state`): replayed history never ends
   up under a live model, nor live data under a replay.
2. With live sources, that the markets can be reached at all (`rayapp.ingest.require_reachable`:
   one cheap request per enabled source, in parallel): when no price source answers, the run
   stops with one error naming each source, the cause and the two ways on; when only some fail,
   it goes on and says which are missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape

from rayapp.flows.state import choose_state_dir, mark_state
from rayapp.log import get_logger
from rayapp.terminal import console

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.ingest import Reachability

log = get_logger(__name__)


def state_for_mode(settings: Settings, *, reuse: bool) -> Settings:
    """The settings with the state directory this run's sources mode may use (warns on a switch)."""
    choice = choose_state_dir(settings, reuse=reuse)
    if choice.warning:
        console.print(f"[yellow]warning:[/yellow] {escape(choice.warning)}", highlight=False, soft_wrap=True)
        log.warning(
            "state directory holds another mode's data",
            state_dir=str(settings.state_path),
            found=choice.found,
            mode=settings.sources.mode,
            using=str(choice.path),
            reuse=reuse,
        )
    return choice.settings


def check_sources(settings: Settings, *, offline_hint: str) -> Reachability | None:
    """With live sources: stop when no price source answers; say which sources are missing.

    None when nothing was checked (replay sources, or `ingest.reachability_timeout_s=0`)."""
    from rayapp.ingest import require_reachable

    if settings.sources.mode != "live":
        return None
    if settings.ingest.reachability_timeout_s <= 0:
        log.info("reachability check off", key="ingest.reachability_timeout_s")
        return None
    report = require_reachable(settings, offline_hint=offline_hint)  # SourcesUnreachable: exit 1
    if report.unreachable:
        names = ", ".join(r.source for r in report.unreachable)
        console.print(f"[yellow]warning:[/yellow] continuing without {escape(names)}: unreachable", highlight=False)
        for r in report.unreachable:
            console.print(f"  {escape(r.describe())}", highlight=False, soft_wrap=True)
    log.info(
        "sources checked",
        reachable=",".join(report.reachable) or None,
        unreachable=",".join(r.source for r in report.unreachable) or None,
        skipped=",".join(report.skipped) or None,
    )
    return report


def mark(settings: Settings, *, by: str) -> None:
    """Record the state directory's mode (its newest data is about to come from this run)."""
    mark_state(settings, by=by)
