"""`rayapp demo`: the whole system end to end on embedded defaults.

ingest (last N days: live APIs, or the local replay server with `sources=replay`) → sentiment
scoring → features (offline + online store) → a small Tune search and training run registered in
MLflow → then exactly `rayapp run`: Ray Serve serving the champion and the scheduler keeping it
fresh (refresh every 15 minutes: new candles → new feature row → a pushed prediction; resolve and
drift hourly). With `sources=replay` the scheduler follows the replay server's market clock, at
120x unless replay.speed says otherwise, so a 15-minute slot comes every 7.5 s. Each stage is
called through its public function, exactly as its own command would.

Before it fetches anything (rayapp/flows/preflight.py) the demo takes the state directory of its
sources mode (a live demo never trains on an earlier offline demo's replayed history) and, with
live sources, checks the markets answer at all: when no price source does, it stops with one
error naming each source's cause and the ways on; when some do, it goes on without the others.
Every forecast says how old its data is (`stale` past serving.feature_staleness_s, against the
market clock in replay mode), and so does the first one the demo announces.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.ingest import Reachability

log = get_logger(__name__)
out = Console()
REPLAY_SPEED = 120.0  # market seconds per wall second while serving: an hour every 30 s
OFFLINE_HINT = "`rayapp demo sources=replay replay.data=DIR` (the CSV history in DIR, e.g. ../shared/data)"


def _step(name: str) -> float:
    out.rule(f"[bold]{name}")
    return time.monotonic()


def _done(t0: float, what: str) -> None:
    out.print(f"[green]✓[/green] {what} [dim]({time.monotonic() - t0:.1f} s)[/dim]")


def start_replay(settings: Any) -> tuple[Any, Any, pd.Timestamp]:
    """The replay server on a free port with its clock at the newest hour that has news too."""
    from rayapp.replay import ReplayData, ReplayServer, app_from_settings

    rs = settings.replay.model_copy(deep=True)
    data = ReplayData.load(rs.data, rs.klines_files)
    if rs.start:
        start = pd.Timestamp(rs.start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    else:
        end = pd.Timestamp(int(data.opens.max()), unit="s", tz="UTC")
        if len(data.news):
            # the demo is more telling where articles exist: end where the news history ends
            end = min(end, pd.Timestamp(int(data.news["published_on"].max()), unit="s", tz="UTC"))
        start = end.floor("h") - pd.Timedelta(days=1)
    rs.start, rs.speed = start.isoformat(), rs.speed or REPLAY_SPEED
    server = ReplayServer(app_from_settings(rs, data=data), host=rs.host, port=0)
    url = server.start()
    s = settings.model_copy(deep=True)
    s.replay = rs
    old = settings.sources.replay_url or ""
    for name in type(s.sources).model_fields:
        value = getattr(s.sources, name)
        if name.endswith("_url") and isinstance(value, str) and old and value.startswith(old):
            setattr(s.sources, name, url + value[len(old) :])
    s.sources.replay_url = url
    out.print(f"replay server {url}: market clock starts {start.isoformat()} at {rs.speed:g}x")
    return server, s, start


def ingest(settings: Any, start: Any, end: Any, reach: Reachability | None = None) -> None:
    """Ingest every enabled source that answered the reachability check; the ones that did not
    are in the summary as failed, with the check's cause, without spending their retries."""
    from rayapp.ingest import SourceSummary, client_class, print_summaries, run_ingest

    names = list(settings.ingest.sources or settings.sources.enabled)
    down = {r.source: r for r in reach.unreachable} if reach is not None else {}
    fetch = [n for n in names if n not in down]
    summaries = dict(run_ingest(settings, sources=fetch, start=start, end=end).summaries) if fetch else {}
    for name, r in down.items():
        summaries[name] = SourceSummary(
            source=name, table=client_class(name).table, errors=[f"unreachable, not fetched: {r.describe()}"]
        )
    print_summaries(out, [summaries[n] for n in names if n in summaries], f"ingest {start:%Y-%m-%d} → {end:%Y-%m-%d}")


def train_and_promote(settings: Any, trials: int) -> str:
    from rayapp.registry import promote
    from rayapp.training import load_training_frame, train_model

    frame = load_training_frame(settings)
    settings = settings.model_copy(deep=True)
    for label, cv in (("search", settings.tune.cv), ("gate", settings.lifecycle.gate)):
        need = cv.n_splits * cv.test_size_h + 2 * 168
        if len(frame) < need:
            # A short demo history: smaller walk-forward test windows, still n_splits of them.
            configured = cv.test_size_h
            cv.test_size_h = max(24, (len(frame) - 2 * 168) // cv.n_splits)
            out.print(
                f"  {len(frame)} rows: {label} walk-forward test windows of {cv.test_size_h} h "
                f"(configured {configured} h needs {need} rows)"
            )
    outcome = train_model(settings, frame, num_samples=trials, data_source="offline_store (demo)")
    out.print(
        f"  {settings.mlflow.registered_model} v{outcome.version}: cv {settings.tune.metric}="
        f"{outcome.cv_mean:.4f}; gate {'promoted' if outcome.promoted else 'refused'}"
    )
    for reason in outcome.gate.get("reasons", []):
        out.print(f"    gate: {reason}")
    if not outcome.promoted and not _has_champion(settings):
        # Serving needs a model: the demo serves the challenger and says so; the refused gate
        # decision stays visible at /model and in MLflow.
        promote(settings.mlflow.registered_model, outcome.version)
        out.print(
            "[yellow]  no champion existed: the demo serves this challenger although the gate "
            "refused it (see /model → gate)[/yellow]"
        )
    return str(outcome.version)


def _has_champion(settings: Any) -> bool:
    from rayapp.registry import ModelNotFound, alias_version

    try:
        alias_version(settings, "champion")
        return True
    except ModelNotFound:
        return False


def wait_first_prediction(base: str, timeout_s: float = 120) -> dict[str, Any] | None:
    """The first logged prediction whose data is fresh now (the ingress predicts as soon as it
    sees a feature row; under replay the scheduler's first refresh catches up with the market
    clock, which ran on while the demo trained), else the newest stale one at the deadline."""
    import json
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    newest: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/predictions/latest", timeout=5) as r:
                newest = dict(json.loads(r.read()))
            if not newest.get("stale_now"):
                return newest
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(1)
    return newest


def announce(first: dict[str, Any] | None, elapsed_s: float, base: str) -> None:
    """The demo's result line; a forecast from stale data says so, loudly, never passing for live."""
    from rayapp.serving import human_age

    if first is None:
        out.print("[red]no prediction logged within 120 s: see /ready and the Serve logs[/red]")
        return
    age = first.get("data_age_now_s")
    old = f", data {human_age(age)} old" if age is not None else ""
    line = (
        f"{first['ts']} {first['direction_label']} p_up={first['p_up']:.3f} model v{first['model_version']}"
        f"{old} (GET {base}/predictions/latest)"
    )
    if first.get("stale_now"):
        out.print(
            f"[bold red]STALE: the newest prediction is from old data, not a live forecast:[/bold red] {line}\n"
            f"  no fresh data has arrived: see GET {base}/ready and {base}/freshness"
        )
    else:
        out.print(f"[bold]first prediction served {elapsed_s:.0f} s after start:[/bold] {line}")


def run_demo(
    settings: Any,
    *,
    days: int = 60,
    trials: int = 4,
    duration_s: float | None = None,
    skip_sentiment: bool = False,
    reuse_state: bool = False,
) -> int:
    from rayapp.features import run_build
    from rayapp.flows.preflight import check_sources, mark, state_for_mode
    from rayapp.flows.run import print_schedule, start_system, wait_and_stop
    from rayapp.serving import print_urls, resolve_settings, start_ray

    t_start = time.monotonic()
    server = None
    t0 = _step("services and Ray")
    settings = state_for_mode(settings, reuse=reuse_state)
    settings = resolve_settings(settings)
    # before Ray and before any fetch: SourcesUnreachable (exit 1) when no price source answers
    reach = check_sources(settings, offline_hint=OFFLINE_HINT)
    mark(settings, by="rayapp demo")
    start_ray(settings)
    if settings.sources.mode == "replay":
        server, settings, now = start_replay(settings)
    else:
        now = pd.Timestamp.now(tz="UTC").floor("h")
    _done(t0, f"PostgreSQL, Redis, Ray ready ({settings.sources.mode} sources)")
    try:
        t0 = _step(f"1/5 ingest {days} days up to {now.isoformat()}")
        ingest(settings, now - pd.Timedelta(days=days), now, reach)
        _done(t0, "ingested")
        if not skip_sentiment:
            from rayapp.sentiment import run_score

            t0 = _step("2/5 sentiment scoring")
            summary = run_score(settings)
            _done(t0, f"scored {summary.scored} articles with {summary.model_id} ({summary.backend})")
        t0 = _step("3/5 features")
        for b in run_build(settings):
            out.print(
                f"  {b.symbol}: {b.rows} rows {b.first_ts} → {b.last_ts}, version "
                f"{b.feature_set_version}, online {b.online_ts}"
            )
        _done(t0, "features in the offline and online stores")
        t0 = _step(f"4/5 training ({trials} trials)")
        version = train_and_promote(settings, trials)
        _done(t0, f"registered v{version}")
        t0 = _step("5/5 serving and the scheduler (rayapp run)")
        running = start_system(settings, resolved=True)
        _done(t0, "Ray Serve application and scheduler running")
        print_urls(running.serving)
        print_schedule(running)
        announce(wait_first_prediction(running.base_url), time.monotonic() - t_start, running.base_url)
        return wait_and_stop(running, duration_s)
    except KeyboardInterrupt:
        out.print("[yellow]stopping[/yellow]")
        _stop_all(settings)
        return 0
    finally:
        if server is not None:
            server.stop()


def _stop_all(settings: Any) -> None:
    """Ctrl-C before `rayapp run` took over: stop whatever of it had started."""
    from rayapp.flows.run import stop_system
    from rayapp.flows.scheduler import SchedulerNotRunning

    try:
        stop_system(settings)
    except SchedulerNotRunning:
        pass
    except Exception as exc:
        log.warning("stop failed", error=type(exc).__name__)
