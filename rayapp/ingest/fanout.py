"""The Ray Data fan-out of `rayapp ingest`: (source, time window) partitions fetched in parallel.

Plan (`rayapp.ingest.plan`) -> fan-out (here) -> watermarks (`rayapp.ingest.watermarks`):

Ray Data tasks, at most ``ingest.workers`` at once. Each worker process keeps one PartitionWorker
(event loop, DB pool, lake, limiter handles) across tasks: Ray reuses task workers (and prestarts
them), so a run does not pay a process start and the imports per worker the way an actor pool
would - on a small machine that start-up was most of a run. Each partition is fetched through the
source's client with that source's Ray-actor rate limiter (one budget for all workers), its raw
responses written to bronze, then its rows validated and upserted to silver in one transaction
that also moves the watermark when the window starts at it - up to the window's
``complete_until`` (the client's word on how far it is complete: an open bar, a day not yet
published, the replay's clock). The driver advances each watermark over the finished windows in
order as results stream in.

A failing source only fails its own partitions: the others finish, the summary reports the
failure and the command exits non-zero.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg

from rayapp.errors import InputError
from rayapp.ingest.plan import Partition, Plan, make_plan, source_now, utc
from rayapp.ingest.silver import SourceSummary, write_silver
from rayapp.ingest.watermarks import WatermarkTracker, advance_watermark, complete_until
from rayapp.log import configure, get_logger
from rayapp.runtime import ensure_ray

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.ingest.types import FetchResult

log = get_logger(__name__)


# ---- the Ray Data worker ------------------------------------------------------------------------
_WORKERS: dict[str, PartitionWorker] = {}


def process_batch(batch: dict[str, Any], settings_json: str) -> dict[str, list[Any]]:
    """The Ray Data task: this process's PartitionWorker for these settings, made once."""
    worker = _WORKERS.get(settings_json)
    if worker is None:
        from rayapp.config import Settings

        worker = _WORKERS[settings_json] = PartitionWorker(Settings.model_validate_json(settings_json))
    return worker(batch)


class PartitionWorker:
    """Fetch -> bronze -> silver (+ watermark) for one partition per call (state kept per process)."""

    def __init__(self, settings: Settings) -> None:
        t0 = time.perf_counter()
        from rayapp.ingest import CLIENTS
        from rayapp.lake import BronzeLake
        from rayapp.warehouse import get_pool

        configure(settings.log.level, settings.log.format)
        self.settings = settings
        self.pool = get_pool(settings)
        self.lake = BronzeLake.from_settings(settings)
        self.loop = asyncio.new_event_loop()
        # Looked up by name once per process: the driver holds each limiter actor for the whole
        # job (http.RayRateLimiter.create), so the handles stay valid across runs.
        self.limiters: dict[str, Any] = {}
        for name in settings.ingest.sources or settings.sources.enabled:
            if name in CLIENTS:
                CLIENTS[name]  # import the client modules now, not inside the first partition
        log.debug("worker ready", init_s=round(time.perf_counter() - t0, 3))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {
            "source": [],
            "key": [],
            "start": [],
            "end": [],
            "seq": [],
            "summary": [],
            "until": [],
        }
        for i in range(len(batch["source"])):
            part = Partition.from_row({k: batch[k][i] for k in ("source", "key", "start", "end", "seq")})
            summary, until = self.process(part)
            for k, v in part.to_row().items():
                out[k].append(v)
            out["summary"].append(json.dumps(summary.as_dict()))
            out["until"].append(until.isoformat())
        return out

    async def _fetch(self, part: Partition) -> list[FetchResult]:
        from rayapp.ingest import CLIENTS
        from rayapp.ingest.http import RayRateLimiter, open_session

        if part.source not in self.limiters:
            try:
                self.limiters[part.source] = RayRateLimiter.lookup(part.source, self.settings.sources.max_wait_s)
            except ValueError:  # no driver-made actor (a worker run on its own): make it here
                from rayapp.ingest.http import make_limiter

                self.limiters[part.source] = make_limiter(part.source, self.settings, shared=True)
        # A session per partition: closed before the call returns, so an actor that Ray Data
        # tears down never leaves sockets behind.
        async with open_session(self.settings) as session:
            client = CLIENTS[part.source](self.settings, session, self.limiters[part.source])
            return await client.fetch(part.key, part.start, part.end)

    def process(self, part: Partition) -> tuple[SourceSummary, pd.Timestamp]:
        """(what the window did, how far it is complete: the watermark may move up to there)."""
        from rayapp.ingest.bronze import write_bronze, write_bronze_error
        from rayapp.ingest.types import IngestError

        summary = SourceSummary(source=part.source, partitions=1)
        t0 = time.perf_counter()
        try:
            results = self.loop.run_until_complete(self._fetch(part))
        except IngestError as exc:
            summary.errors.append(f"{part.key} {part.start:%Y-%m-%d %H:%M}..{part.end:%Y-%m-%d %H:%M}: {exc}")
            if exc.payload is not None:
                from rayapp.ingest import CLIENTS

                write_bronze_error(
                    self.lake,
                    part.source,
                    CLIENTS[part.source].dataset,
                    key=part.key,
                    start=part.start,
                    end=part.end,
                    url=exc.url,
                    status=exc.status,
                    payload=exc.payload,
                    error=str(exc),
                )
            log.error(
                "partition failed", source=part.source, key=part.key, start=part.start.isoformat(), error=str(exc)
            )
            return summary, part.start
        except Exception as exc:  # a bug must not take the other sources down with it
            summary.errors.append(f"{part.key}: {type(exc).__name__}: {exc}")
            log.error("partition crashed", source=part.source, key=part.key, error=traceback.format_exc(limit=5))
            return summary, part.start
        summary.requests = sum(1 for r in results if not r.derived)
        until = complete_until(part, results)
        t1 = time.perf_counter()
        write_bronze(self.lake, part.source, results, key=part.key, start=part.start, end=part.end)
        t2 = time.perf_counter()
        try:
            with self.pool.connection() as conn, conn.transaction():
                summary.add(write_results(conn, part.source, results))
                advance_watermark(conn, part.source, part.key, part.start, until)
        except Exception as exc:
            summary.errors.append(f"{part.key}: silver write failed: {type(exc).__name__}: {exc}")
            log.error("silver write failed", source=part.source, key=part.key, error=str(exc))
            until = part.start
        log.debug(
            "partition done",
            source=part.source,
            key=part.key,
            start=part.start.isoformat(),
            fetch_s=round(t1 - t0, 3),
            bronze_s=round(t2 - t1, 3),
            silver_s=round(time.perf_counter() - t2, 3),
            read=summary.read,
        )
        return summary, until


def write_results(conn: psycopg.Connection, source: str, results: list[FetchResult]) -> SourceSummary:
    """Every table the results fill, validated and upserted (reddit fills two)."""
    total = SourceSummary(source=source)
    tables: dict[str, list[FetchResult]] = {}
    for r in results:
        tables.setdefault(r.table, []).append(r)
    for table, rs in tables.items():
        frames = [r.records for r in rs if len(r.records)]
        df = pd.concat(frames, ignore_index=True) if frames else rs[0].records.iloc[0:0]
        rejected = [q for r in rs for q in r.rejects]
        skipped = sum(int(r.meta.get("skipped", 0) or 0) for r in rs)
        total.add(write_silver(conn, table, df, source=source, rejected=rejected, skipped=skipped))
    total.table = ",".join(sorted(tables))
    return total


# ---- the driver -------------------------------------------------------------------------------
@dataclass
class IngestReport:
    summaries: dict[str, SourceSummary]
    plan: Plan
    watermarks: dict[tuple[str, str], pd.Timestamp]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.summaries.values())


def run_ingest(
    settings: Settings,
    *,
    sources: list[str] | None = None,
    start: Any = None,
    end: Any = None,
    on_partition: Callable[[Partition, SourceSummary], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> IngestReport:
    """Plan, fan out on Ray Data, advance watermarks; never raises for a failing source."""
    import ray
    import ray.data

    from rayapp.ingest import CLIENTS
    from rayapp.ingest.http import make_limiter
    from rayapp.warehouse import database_url, get_pool

    names = list(sources or settings.ingest.sources or settings.sources.enabled)
    unknown = [s for s in names if s not in CLIENTS]
    if unknown:
        raise InputError(f"unknown source(s) {unknown}; known: {', '.join(CLIENTS.keys())}")
    # Workers must reach the same database without starting services of their own.
    settings = settings.model_copy(deep=True)
    settings.database.url = database_url(settings)
    pool = get_pool(settings)
    now = source_now(settings)
    start_ts = utc(start or settings.ingest.start) if (start or settings.ingest.start) else None
    end_ts = utc(end or settings.ingest.end) if (end or settings.ingest.end) else None
    with pool.connection() as conn:
        plan = make_plan(settings, conn, names, start=start_ts, end=end_ts, now=now)
    summaries = {s: SourceSummary(source=s, table=CLIENTS[s].table) for s in names}
    for name, reason in plan.skipped.items():
        summaries[name].note = f"skipped: {reason}"
    if on_plan:
        on_plan(plan)
    log.info(
        "ingest planned",
        partitions=len(plan.partitions),
        sources=",".join(names),
        skipped=",".join(plan.skipped) or None,
        now=now.isoformat(),
    )
    tracker = WatermarkTracker(pool, plan)
    if plan.partitions:
        ensure_ray(settings, log_to_driver=True)
        for name in {p.source for p in plan.partitions}:
            make_limiter(name, settings, shared=True)  # the named actor every worker looks up
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        n = min(settings.ingest.workers, len(plan.partitions))
        items = ray.data.from_items([p.to_row() for p in plan.partitions], override_num_blocks=len(plan.partitions))
        # Ray Data's stub types fn as one-argument; process_batch takes its settings via fn_kwargs.
        ds = items.map_batches(
            process_batch,  # type: ignore[arg-type]
            batch_size=1,
            fn_kwargs={"settings_json": settings.model_dump_json()},
            compute=ray.data.TaskPoolStrategy(size=n),
            num_cpus=0.25,
        )
        seen = 0
        try:
            for row in ds.iter_rows():
                part = Partition.from_row(row)
                got = SourceSummary.from_dict(json.loads(row["summary"]))
                summaries[part.source].add(got)
                seen += 1
                if got.ok:
                    tracker.finished(part, utc(str(row["until"])))
                if on_partition:
                    on_partition(part, got)
        except Exception as exc:  # the fan-out itself broke (an actor died): report, don't hide
            log.error("fan-out failed", error=str(exc), finished=seen, planned=len(plan.partitions))
            for src in {p.source for p in plan.partitions}:
                summaries[src].errors.append(f"fan-out failed after {seen} partitions: {exc}")
    watermarks = tracker.current()
    for s in summaries.values():
        log.info(
            "source done",
            source=s.source,
            table=s.table,
            partitions=s.partitions,
            requests=s.requests,
            read=s.read,
            written=s.written,
            unchanged=s.unchanged,
            quarantined=s.quarantined,
            skipped=s.skipped,
            errors=len(s.errors),
        )
    return IngestReport(summaries, plan, watermarks)
