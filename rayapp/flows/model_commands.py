"""`rayapp models history`: the model lifecycle as it happened.

The registry's aliases now (champion, challenger, shadow), the policy's state (which version is
in shadow, since when, the last retrain), the live accuracy and log loss of every version in each
role (champion: returned to clients; shadow: scored off the request path), and the ordered
`model_events`: triggers with their evidence, gate decisions, shadow verdicts with their p-values,
promotions and rollbacks. The same data `GET /models` serves.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from rayapp.errors import StoreUnavailable
from rayapp.terminal import add_overrides, console, out

if TYPE_CHECKING:
    from rayapp.config import Settings

ALIASES = ("champion", "challenger", "shadow")
KIND_STYLE = {
    "trigger": "cyan",
    "suppressed": "dim",
    "retrain": "blue",
    "gate": "magenta",
    "shadow_start": "yellow",
    "shadow_verdict": "yellow",
    "promotion": "green",
    "watch_start": "yellow",
    "watch_verdict": "yellow",
    "rollback": "red",
    "error": "red",
}


def models_history(settings: Settings, version: str | None = None, limit: int = 100) -> dict[str, Any]:
    from rayapp.registry import ModelNotFound, alias_version
    from rayapp.warehouse import get_pool, model_events

    name = settings.mlflow.registered_model
    aliases: dict[str, str | None] = {}
    for a in ALIASES:
        try:
            aliases[a] = alias_version(settings, a)
        except ModelNotFound:
            aliases[a] = None
        except Exception as exc:  # the registry is down: say so, the warehouse part still answers
            aliases[a] = None
            aliases["error"] = f"registry unavailable: {type(exc).__name__}"
    try:
        with get_pool(settings).connection() as conn:
            return {
                "model": name,
                "aliases": aliases,
                "state": model_events.state(conn, name).as_dict(),
                "live": model_events.version_stats(conn, name),
                "events": model_events.events(conn, name, version=version, limit=limit),
            }
    except StoreUnavailable:
        raise
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            raise StoreUnavailable(f"the warehouse is unavailable: {exc}") from exc
        raise


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _summary(e: dict[str, Any]) -> str:
    ev = e.get("evidence") or {}
    if e["kind"] in ("trigger", "suppressed"):
        bits = [f"{k}={_fmt(v, 3)}" for k, v in ev.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        if ev.get("drifted"):
            bits.append("drifted=" + ",".join(ev["drifted"][:5]))
        if ev.get("reason"):
            bits.append(str(ev["reason"]))
        return "; ".join(bits)[:100]
    if e["kind"] in ("shadow_verdict", "watch_verdict"):
        acc_a, acc_b = ev.get("accuracy_a"), ev.get("accuracy_b")
        return f"n={ev.get('n')} acc {_fmt(acc_a, 3)} -> {_fmt(acc_b, 3)} {ev.get('reason', '')}".strip()[:100]
    if e["kind"] == "gate":
        return " | ".join(ev.get("reasons", []))[:100]
    return str(ev.get("reason") or ev.get("run_id") or "")[:100]


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    h = models_history(settings, args.version, args.limit)
    if args.json:
        print(json.dumps(h, indent=2, default=str))
        return 0
    a = h["aliases"]
    out.print(
        f"[bold]{h['model']}[/bold]: champion v{a.get('champion') or '-'}, challenger v{a.get('challenger') or '-'}, "
        f"shadow v{a.get('shadow') or '-'}",
        highlight=False,
    )
    if a.get("error"):
        console.print(f"[yellow]{a['error']}[/yellow]", highlight=False)
    st = h["state"]
    if st["shadow_version"]:
        out.print(
            f"in shadow: v{st['shadow_version']} ({st['shadow_role']}) since {st['shadow_since']}", highlight=False
        )
    out.print(f"last retrain: {st['last_retrain_at'] or '-'}{' (running)' if st['retrain_running'] else ''}")
    live = Table(title="live forecasts per version and role", title_justify="left")
    for c in ("version", "role", "served", "resolved", "accuracy", "log loss", "first hour", "last hour"):
        live.add_column(c)
    for r in h["live"]:
        live.add_row(
            str(r["version"]),
            r["role"],
            str(r["served"]),
            str(r["resolved"]),
            _fmt(r["accuracy"]),
            _fmt(r["log_loss"]),
            str(r["first_ts"])[:16],
            str(r["last_ts"])[:16],
        )
    out.print(live)
    t = Table(title="model events", title_justify="left")
    for c in ("id", "clock", "kind", "trigger", "version", "vs", "decision", "p", "evidence"):
        t.add_column(c, overflow="fold")
    for e in h["events"]:
        style = KIND_STYLE.get(e["kind"], "")
        t.add_row(
            str(e["event_id"]),
            str(e["clock_ts"])[:16],
            f"[{style}]{e['kind']}[/{style}]" if style else e["kind"],
            e["trigger"] or "",
            e["version"] or "",
            e["other_version"] or "",
            e["decision"] or "",
            _fmt(e["p_value"]),
            _summary(e),
        )
    out.print(t)
    if not h["events"]:
        out.print("no model events yet (the scheduler's `retrain` job writes them: `rayapp run`)")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "models", help="the model lifecycle: history of triggers, gates, shadows, promotions", description=__doc__
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = sub.add_parser(
        "history",
        help="aliases, live accuracy per version and role, and every lifecycle event",
        description="aliases (champion, challenger, shadow), the policy state, live accuracy and log loss per "
        "version and role, and the model_events (triggers with evidence, gate, shadow verdicts with "
        "p-values, promotions, rollbacks), oldest first",
    )
    q.add_argument("--version", help="only events about this version")
    q.add_argument("--limit", type=int, default=100, help="newest events (default 100)")
    q.add_argument("--json", action="store_true", help="print JSON")
    add_overrides(q)
    q.set_defaults(handler=_history)
