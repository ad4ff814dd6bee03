"""`rayapp monitor drift` (PSI of served features against the champion's training window) and
`rayapp alerting render|check` (the Prometheus and Alertmanager configs of deploy/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rayapp.terminal import add_overrides, out


def _drift(args: argparse.Namespace, settings: Any) -> int:
    from rich.table import Table

    from rayapp.monitoring.drift import PSI_ALERT, PSI_WARN, drift_report
    from rayapp.registry import load_alias
    from rayapp.warehouse import get_pool

    model = load_alias(settings)  # ModelNotFound (exit 2) when nothing was promoted yet
    symbol = args.symbol or settings.symbols[0]
    with get_pool(settings).connection() as conn:
        rep = drift_report(
            conn,
            symbol,
            model.feature_set_version,
            model.bundle.data_range,
            hours=args.hours,
            max_age_s=settings.serving.feature_staleness_s,
        )
    if args.json:
        print(json.dumps(rep.as_dict(), default=str))
    else:
        t = Table(
            "feature",
            "PSI",
            "reading",
            title=f"{symbol} v{model.version}: {rep.current_rows} served vs {rep.reference_rows} training rows",
        )
        for name, v in rep.psi.items():
            reading = "n/a" if v != v else ("major" if v > PSI_ALERT else "moderate" if v > PSI_WARN else "stable")
            t.add_row(name, f"{v:.3f}", reading)
        out.print(t)
        print(f"newest feature row {rep.newest_feature_ts} ({rep.staleness_s} s old; stale={rep.stale})")
    return 1 if rep.drifted or rep.stale else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("monitor", help="drift and staleness checks of the served model")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    text = (
        "PSI of each feature served in the last --hours against the champion's training rows, and "
        "the age of the newest feature row; exit 1 when a feature drifted (PSI > 0.25) or is stale"
    )
    q = sub.add_parser("drift", help="feature drift (PSI) and staleness", description=text)
    q.add_argument("--symbol", help="symbol (default: the first configured)")
    q.add_argument("--hours", type=int, default=168, help="served window in hours (default 168)")
    q.add_argument("--json", action="store_true", help="print JSON")
    add_overrides(q)
    q.set_defaults(handler=_drift)
    _register_alerting(subparsers)


def _render(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.monitoring import check_configs, render_configs

    r = render_configs(settings, Path(args.out) if args.out else None)
    print(f"prometheus:   {r.prometheus}")
    print(f"alertmanager: {r.alertmanager}")
    print(f"rules:        {len(r.rules)} files in {r.rules[0].parent}")
    print(f"feed token:   {r.token_file}" + (" (created)" if r.token_created else ""))
    for note in r.notes:
        print(f"note: {note}")
    if not getattr(args, "check", False):
        print(f"run: prometheus --config.file={r.prometheus} / prometheus-alertmanager --config.file={r.alertmanager}")
        return 0
    failed = False
    for c in check_configs(r):
        state = "not installed" if c.ok is None else "ok" if c.ok else "FAILED"
        print(f"{c.tool}: {state}  {c.target}")
        if c.ok is False:
            failed = True
            print(c.output)
    return 1 if failed else 0


def _register_alerting(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "alerting",
        help="Prometheus rules and Alertmanager routing (deploy/, conf/alerting/)",
        description="Write the Prometheus and Alertmanager configs of deploy/ with this installation's "
        "intervals, targets, routing times and receivers (conf/alerting/); secrets stay in their files.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_, checks in (
        ("render", "write prometheus.yml, alertmanager.yml and rules/ for this installation", False),
        ("check", "render, then promtool check config and amtool check-config (exit 1 on a failure)", True),
    ):
        q = sub.add_parser(name, help=help_, description=help_)
        q.add_argument("--out", help="output folder (default: alerting.out_dir, else <state_dir>/alerting)")
        add_overrides(q)
        q.set_defaults(handler=_render, check=checks)
