"""The interval model vs its baselines on the real price history's last two years, walk-forward
with weekly refits (docs/INTERVALS.md).

For each horizon (1 h and 24 h by default): 104 evaluated weeks, each model and baseline refitted
at every week's boundary on the previous year of rows whose label ends before it (sliding 8,760
rows, purge = horizon), after 26 warm-up weeks that only build the out-of-sample history the
conformal correction is fitted on. Compared on the same hours: the interval model (the configured
`tune.intervals.method`, CQR calibrated on the trailing 26 weeks' out-of-fold rows, plus ACI
online with the feedback delayed by the horizon: the served configuration), today's constant-width
conformal band, RiskMetrics EWMA (lambda 0.94) scaled by the standardised returns of the last
training year, GARCH(1,1) with Student-t errors (`arch`), and HAR-RV. Figures: coverage, width and
Winkler score of the 90 % interval, Diebold-Mariano p-values (one-sided: the model's Winkler score
is lower; HAC lag h-1 as specified, and a Newey-West rule-of-thumb lag as a robustness check),
and the wall time of all GARCH refits vs all the model's (fit + predict, one thread each).
Nothing is tuned on the evaluation period: the method and its parameters were chosen on the
year before it (`--select`).

    python benchmarks/intervals.py                    # the evaluation: last two years, 1 h and 24 h
    python benchmarks/intervals.py --select --horizons 1 --methods quantile,vol   # the choice

Last line: JSON {"h1": {...}, "h24": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRICE_FILE = ROOT.parent / "shared" / "data" / "btc_usd_1h_2019-11_2025-05.csv"
YEAR_H = 8760


def headline(res: dict, method: str) -> dict:
    m = res["methods"]
    head = f"model_{method}_aci"
    dm = res["dm_winkler90"]
    w = {k: m[k]["90"]["winkler"] for k in m}
    out = {
        "hours": res["n"],
        "start": res["start"],
        "end": res["end"],
        "refits": res["refits"] - 26,
        "model": head,
        "coverage_90": m[head]["90"]["coverage"],
        "width_90": m[head]["90"]["width"],
        "winkler": w[head],
        "coverage_50": m[head]["50"]["coverage"],
        "coverage_80": m[head]["80"]["coverage"],
        "coverage_90_static_cqr": m[f"model_{method}"]["90"]["coverage"],
        "winkler_static_cqr": w[f"model_{method}"],
        "qlike": m[head].get("qlike"),
    }
    for b in ("constant", "ewma", "garch", "har"):
        out[f"winkler_{b}"] = w[b]
        out[f"coverage_90_{b}"] = m[b]["90"]["coverage"]
        out[f"width_90_{b}"] = m[b]["90"]["width"]
        out[f"qlike_{b}"] = m[b].get("qlike")
        out[f"dm_p_{b}"] = dm[b]["hac_h_minus_1"]["p_value"]
        out[f"dm_p_{b}_nw"] = dm[b]["hac_auto"]["p_value"]
    for other in m:
        if other.startswith("model_") and other != head:
            out[f"winkler_{other}"] = w[other]
            out[f"coverage_90_{other}"] = m[other]["90"]["coverage"]
    out["winkler_gain_vs_constant"] = 1 - w[head] / w["constant"]
    out["winkler_gain_vs_garch"] = 1 - w[head] / w["garch"]
    walls = res["wall_s"]
    out["wall_s_model_refits"] = round(sum(v for k, v in walls.items() if k == f"model_{method}"), 2)
    out["wall_s_garch_refits"] = round(walls.get("garch", float("nan")), 2)
    out["wall_s_all"] = walls
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--price-csv", default=str(PRICE_FILE))
    ap.add_argument("--horizons", default="1,24")
    ap.add_argument("--eval-h", type=int, default=2 * YEAR_H, help="evaluated hours at the end of the history")
    ap.add_argument("--methods", default="", help="interval model constructions (default: tune.intervals.method)")
    ap.add_argument("--select", action="store_true", help="the year before the evaluation period instead")
    ap.add_argument("--report", default="", help="also write the full per-year / per-regime report here (JSON)")
    args = ap.parse_args()

    if not Path(args.price_csv).exists():
        print(json.dumps({"skipped": f"{args.price_csv} not found (the real price history lives in ../shared/data)"}))
        return 0
    from rayapp.config import load_settings
    from rayapp.lifecycle import run_interval_backtest
    from rayapp.training import IntervalConfig, price_file_frame

    settings = load_settings([])
    cfg = IntervalConfig.from_settings(settings.tune.intervals)
    methods = tuple(m for m in args.methods.split(",") if m) or (cfg.method,)
    out: dict = {}
    full: dict = {}
    for h in (int(v) for v in args.horizons.split(",")):
        frame = price_file_frame(args.price_csv, h, settings.features.set)
        end_row = len(frame) - (args.eval_h + h if args.select else 0)
        eval_h = YEAR_H if args.select else args.eval_h
        t0 = time.perf_counter()
        print(f"h={h}: rows={len(frame)} load={os.getloadavg()[0]:.1f}", file=sys.stderr)
        res = run_interval_backtest(
            frame,
            cfg,
            eval_h=eval_h,
            end_row=end_row,
            nthread=1,
            seed=settings.model.seed,
            headline=f"model_{methods[-1]}_aci",
            methods=methods,
        )
        full[f"h{h}"] = res
        out[f"h{h}"] = headline(res, methods[-1])
        out[f"h{h}"]["wall_s_total"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(out[f"h{h}"], default=float), file=sys.stderr)
    h1 = out.get("h1")
    if h1:
        out["targets"] = {
            "coverage_within_1_5pt": all(
                abs(v["coverage_90"] - 0.9) <= 0.015 for v in out.values() if "coverage_90" in v
            ),
            "winkler_10pct_better_than_constant_h1": h1["winkler_gain_vs_constant"] >= 0.10,
            "better_than_garch_dm_p_lt_0_05_h1": h1["winkler"] < h1["winkler_garch"] and h1["dm_p_garch"] < 0.05,
        }
    out["period"] = "select (the year before the evaluation)" if args.select else "evaluation (the last two years)"
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if args.report:
        Path(args.report).write_text(json.dumps(full, indent=1, default=float))
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
