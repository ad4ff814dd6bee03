"""The `rayapp` command.

Every subcommand takes Hydra-style `key=value` overrides after its own arguments, e.g.
`rayapp db stats --json database.url=postgresql://...`. Stage packages and the flows add their
subcommands through a `register(subparsers)` function in their `commands.py` (listed in
`COMMAND_MODULES`); those modules use `rayapp.terminal`, never this module. `main()` is the one
place that turns a `RayappError` into an `error:` line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.table import Table

from rayapp.config import Settings, compose_dict, load_settings, masked, validate
from rayapp.errors import RayappError, StoreUnavailable
from rayapp.log import configure
from rayapp.terminal import add_overrides, console, out, print_error

COMMAND_MODULES = (
    "rayapp.flows.commands",
    "rayapp.flows.schedule_commands",
    "rayapp.flows.model_commands",
    "rayapp.ingest.commands",
    "rayapp.replay.commands",
    "rayapp.sentiment.commands",
    "rayapp.features.commands",
    "rayapp.training.commands",
    "rayapp.serving.commands",
    "rayapp.monitoring.commands",
    "rayapp.lifecycle.commands",
)

Handler = Callable[[argparse.Namespace, Settings], int]


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "overrides", []) or [])


# ---- config ------------------------------------------------------------------------------------
def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    data = compose_dict(args.overrides)
    validate(data)
    print(json.dumps(masked(data), indent=2, default=str) if args.json else _yaml(masked(data)))
    return 0


def _yaml(data: dict[str, Any]) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(data))


# ---- services ----------------------------------------------------------------------------------
def _services_up(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.services import services_status, services_up

    info = services_up(settings)
    for name, item in info.items():
        how = "external" if not item["embedded"] else ("started" if item["started"] else "already running")
        console.print(f"[bold]{name}[/bold]: {how} at {masked(item['url'])}")
    if args.json:
        print(json.dumps(masked(info)))
    # A configured (external) store is only checked: `up` fails when one does not answer. The
    # embedded ones were just started (or found running) by services_up: no second round trip.
    external = [n for n, item in info.items() if not item["embedded"]]
    status = services_status(settings) if external else {}
    down = [(n, status[n]) for n in external if not status[n]["healthy"]]
    if down:
        raise StoreUnavailable("; ".join(f"{n} is unreachable at {masked(st['url'])}: {st['error']}" for n, st in down))
    return 0


def _services_down(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.services import services_down

    stopped = services_down(settings)
    for name, was in stopped.items():
        console.print(f"[bold]{name}[/bold]: {'stopped' if was else 'not running (or external)'}")
    return 0


def _services_status(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.services import services_status

    status = services_status(settings)
    if args.json:
        print(json.dumps(masked(status)))
    else:
        table = Table("service", "url", "embedded", "healthy", "error")
        for name, item in status.items():
            table.add_row(
                name,
                str(masked(item["url"])),
                str(item["embedded"]),
                "[green]yes[/green]" if item["healthy"] else "[red]no[/red]",
                item["error"] or "",
            )
        out.print(table)
    unhealthy = [f"{name} ({item['error']})" for name, item in status.items() if not item["healthy"]]
    if unhealthy:
        raise RayappError(f"unhealthy: {', '.join(unhealthy)}")  # exit 1, after the full report
    return 0


# ---- db ----------------------------------------------------------------------------------------
def _db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.migrate import applied, migrate

    pool = get_pool(settings, migrate_schema=False)
    with pool.connection() as conn:
        now = migrate(conn)
        versions = applied(conn)
    console.print(
        f"applied now: {', '.join(now) if now else 'none (up to date)'}; schema at {versions[-1][0]}_{versions[-1][1]}"
    )
    return 0


def _db_stats(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.warehouse import get_pool, table_counts

    with get_pool(settings).connection() as conn:
        counts = table_counts(conn)
    if args.json:
        print(json.dumps(counts))
    else:
        table = Table("table", "rows")
        for name, n in counts.items():
            table.add_row(name, f"{n:,}")
        out.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rayapp",
        description="Ray-native Bitcoin price prediction engine: ingest, sentiment, features, "
        "training and serving. Every command takes key=value configuration overrides.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("config", help="show the resolved configuration")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = csub.add_parser("show", help="print the composed configuration with secrets masked")
    q.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    add_overrides(q)
    q.set_defaults(handler=_config_show)

    p = sub.add_parser("services", help="embedded PostgreSQL and Redis: up, down, status")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, fn, text in (
        ("up", _services_up, "start embedded services (reuses running ones)"),
        ("down", _services_down, "stop embedded services cleanly (data is kept)"),
        ("status", _services_status, "check every store; exit 1 if one is unhealthy"),
    ):
        q = ssub.add_parser(name, help=text, description=text)
        q.add_argument("--json", action="store_true", help="print JSON")
        add_overrides(q)
        q.set_defaults(handler=fn)

    p = sub.add_parser("db", help="warehouse schema and statistics")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = dsub.add_parser("migrate", help="apply pending SQL migrations (idempotent)")
    add_overrides(q)
    q.set_defaults(handler=_db_migrate)
    q = dsub.add_parser("stats", help="row counts per table")
    q.add_argument("--json", action="store_true", help="print JSON")
    add_overrides(q)
    q.set_defaults(handler=_db_stats)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, configure, run the handler; the one place a `RayappError` becomes an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints them and exits 2
    try:
        settings = settings_from(args)
        configure(settings.log.level, settings.log.format)
        handler: Handler = args.handler
        return int(handler(args, settings) or 0)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    except RayappError as exc:
        print_error(exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
