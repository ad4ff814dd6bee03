"""One state directory per sources mode: replayed history never leaks into a live model.

The embedded stores (PostgreSQL, Redis, MLflow, the bronze lake) live under the state directory,
so a live `rayapp demo` run where an offline demo ran before would train on the replayed years
and serve a forecast for an hour long past as if it were live. Each run that brings source data
in (`rayapp demo`, `rayapp run` with its refresh job, `rayapp ingest`) therefore records its
mode in `<state_dir>/sources.json`, and a run of the other mode does not reuse that directory:

* the state directory's data came from the same mode (or it is new): it is used as given;
* it came from the other mode: the run warns and uses `<state_dir>/<mode>/` (e.g. `.rayapp/live/`)
  instead, a state directory of its own mode, with stores of its own;
* `--reuse-state`: the run uses the directory anyway (the warning says it mixes), and the record
  then names this run's mode, whose data is now the newest there.

A directory written before modes were recorded is judged by its bronze lake: the newest price
response's URL is the replay server's (loopback) or a public API's.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rayapp.errors import InputError
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)

MARKER = "sources.json"
MODES = ("live", "replay")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
PRICE_DATASETS = (("binance", "klines"), ("coinbase", "candles"))


@dataclass
class StateChoice:
    settings: Settings  # the run's settings, state_dir (and the paths under it) as chosen
    path: Path
    found: str | None  # the mode of the data the configured directory held (None: new or unknown)
    switched: bool  # the run uses <state_dir>/<mode>/ instead of the configured directory
    warning: str | None  # what the run must say (mixing refused, or --reuse-state mixing)


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("mode") in MODES else None


def _newest_price_file(lake: Path) -> Path | None:
    newest: tuple[str, float, Path] | None = None
    for source, dataset in PRICE_DATASETS:
        days = sorted((lake / source / dataset).glob("dt=*"))
        if not days:
            continue
        files = list(days[-1].glob("*.parquet"))
        for f in files:
            key = (days[-1].name, f.stat().st_mtime, f)
            if newest is None or key[:2] > newest[:2]:
                newest = key
    return None if newest is None else newest[2]


def infer_mode(settings: Settings, path: Path) -> str | None:
    """The mode of a state directory written before modes were recorded, from its bronze lake."""
    if settings.storage.backend != "local":
        return None
    lake = Path(settings.storage.root).expanduser()
    if not lake.is_absolute():
        lake = Path.cwd() / lake
    if not lake.resolve().is_relative_to(path):
        return None  # a lake elsewhere says nothing about this directory's stores
    newest = _newest_price_file(lake)
    if newest is None:
        return None
    try:
        import pyarrow.parquet as pq

        urls = pq.read_table(newest, columns=["url"]).column("url").to_pylist()
    except Exception as exc:  # an unreadable file: unknown, not an error
        log.warning("bronze file unreadable", path=str(newest), error=type(exc).__name__)
        return None
    hosts = {urlparse(u).hostname for u in urls if u}
    if not hosts:
        return None
    return "replay" if hosts <= LOOPBACK else "live"


def data_mode(settings: Settings, path: Path) -> str | None:
    """The mode the directory's data came from: its record, else its bronze lake, else None."""
    marker = read_marker(path)
    if marker is not None:
        return str(marker["mode"])
    return infer_mode(settings, path)


def with_state_dir(settings: Settings, path: Path) -> Settings:
    """`settings` with another state directory, and the paths that were under the old one moved."""
    old = settings.state_path
    s = settings.model_copy(deep=True)
    s.state_dir = str(path)
    root = Path(settings.storage.root).expanduser()
    if settings.storage.backend == "local" and (root if root.is_absolute() else Path.cwd() / root).resolve() == (
        old / "lake"
    ):
        s.storage.root = str(path / "lake")  # the default `${state_dir}/lake`
    return s


def choose_state_dir(settings: Settings, *, reuse: bool = False) -> StateChoice:
    """The state directory this run's mode may use (module docstring: the rule)."""
    mode = settings.sources.mode
    base = settings.state_path
    found = data_mode(settings, base)
    if found is None or found == mode:
        return StateChoice(settings, base, found, False, None)
    if reuse:
        warning = (
            f"{base} holds {found} data and this {mode} run uses it anyway (--reuse-state): "
            f"{found} history will be mixed into what this run trains and serves"
        )
        return StateChoice(settings, base, found, False, warning)
    target = base / mode
    inner = read_marker(target)
    if inner is not None and inner["mode"] != mode:
        raise InputError(
            f"{target} holds {inner['mode']} data too: pass state_dir= a directory of its own for this "
            f"{mode} run, or --reuse-state to mix"
        )
    warning = (
        f"{base} holds {found} data: this {mode} run uses {target} instead (its own stores), so "
        f"{found} history never reaches a {mode} model; --reuse-state uses {base} anyway"
    )
    return StateChoice(with_state_dir(settings, target), target, found, True, warning)


def mark_state(settings: Settings, *, by: str) -> None:
    """Record that the newest data in the state directory comes from this run's mode."""
    path = settings.state_path
    mode = settings.sources.mode
    record: dict[str, Any] = {"mode": mode, "at": datetime.now(UTC).isoformat(), "by": by}
    if mode == "replay":
        record["replay_data"] = str(Path(settings.replay.data).expanduser())
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{MARKER}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(path / MARKER)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("state directory mode recorded", state_dir=str(path), mode=mode, by=by)
