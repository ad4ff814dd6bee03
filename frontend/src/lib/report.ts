// Pull the Analytics tables out of /report and /model. The report is the training run's JSON
// artifacts keyed by path ("training.calibration", "explain.shap_importance", "ablation.<period>"),
// so each reader checks the shape it expects and returns nothing rather than guessing.
import type { ModelInfo, Report } from "../api/types";
import type { Table } from "./csv";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const numOrNull = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);

function artifacts(report: Report | undefined, part: "training" | "ablation" | "backtest"): Obj {
  const p = report?.reports?.[part];
  return isObj(p) && isObj(p.artifacts) ? p.artifacts : {};
}

const METRIC_COLS = [
  "accuracy",
  "acc_low",
  "acc_high",
  "brier",
  "sharpe_net",
  "total_return_net",
  "max_drawdown_net",
  "win_rate",
];

function table(name: string, rows: Obj[], lead: string[]): Table {
  const seen = new Set<string>(lead);
  const rest: string[] = [];
  const add = (c: string) => {
    seen.add(c);
    rest.push(c);
  };
  for (const c of METRIC_COLS) if (rows.some((r) => c in r) && !seen.has(c)) add(c);
  for (const r of rows)
    for (const k of Object.keys(r)) if (!seen.has(k) && typeof r[k] !== "object") add(k);
  return { name, columns: [...lead, ...rest], rows };
}

export function foldTable(model: ModelInfo | undefined): Table | null {
  const folds = model?.cv_metrics?.folds;
  if (!Array.isArray(folds) || folds.length === 0) return null;
  return table("folds", folds.filter(isObj), ["fold"]);
}

/** The model beside each baseline: pooled out-of-fold metrics (with intervals) when present. */
export function baselineTable(model: ModelInfo | undefined): Table | null {
  const cv = model?.cv_metrics ?? {};
  const b = model?.baselines ?? {};
  const pooledModel = isObj(cv.pooled) ? cv.pooled : isObj(cv.mean) ? cv.mean : null;
  const base =
    isObj(b.pooled) && Object.keys(b.pooled).length ? b.pooled : isObj(b.mean) ? b.mean : {};
  const rows: Obj[] = [];
  if (pooledModel) rows.push({ name: "model", ...pooledModel });
  for (const [name, m] of Object.entries(base))
    if (isObj(m)) rows.push({ name, ...m, best: b.best === name ? "best baseline" : "" });
  return rows.length ? table("baselines", rows, ["name"]) : null;
}

/** mlflow.log_table JSON ({columns, data}) or a list of row objects, per ablation period. */
export function ablationTables(report: Report | undefined): Table[] {
  const out: Table[] = [];
  for (const [key, v] of Object.entries(artifacts(report, "ablation"))) {
    let rows: Obj[] | null = null;
    if (isObj(v) && Array.isArray(v.columns) && Array.isArray(v.data)) {
      const cols = v.columns as string[];
      rows = (v.data as unknown[][]).map((r) => Object.fromEntries(cols.map((c, i) => [c, r[i]])));
    } else if (Array.isArray(v) && v.every(isObj) && v.some((r) => "config" in (r as Obj))) {
      rows = v as Obj[];
    }
    if (rows)
      out.push(
        table(
          `ablation ${key.replace(/^ablation\./, "")}`,
          rows,
          [
            "config",
            "n_features",
            "accuracy",
            "vs",
            "delta",
            "p_ttest",
            "p_boot",
            "p_boot_holm",
            "significant",
            "practical",
            "skipped",
          ].filter((c) => rows!.some((r) => c in r)),
        ),
      );
  }
  return out;
}

export function importance(report: Report | undefined): { feature: string; value: number }[] {
  const imp = artifacts(report, "training")["explain.shap_importance"];
  if (!isObj(imp)) return [];
  return Object.entries(imp)
    .flatMap(([feature, v]) => (numOrNull(v) === null ? [] : [{ feature, value: v as number }]))
    .sort((a, b) => b.value - a.value);
}

export interface ReliabilityPoint {
  mean_pred: number;
  observed: number;
  count: number;
}
export function reliability(report: Report | undefined): {
  raw: ReliabilityPoint[];
  calibrated: ReliabilityPoint[];
  info: Obj;
} {
  const cal = artifacts(report, "training")["training.calibration"];
  const pick = (v: unknown): ReliabilityPoint[] =>
    Array.isArray(v)
      ? v.filter(isObj).flatMap((p) =>
          numOrNull(p.mean_pred) === null || numOrNull(p.observed) === null
            ? []
            : [
                {
                  mean_pred: p.mean_pred as number,
                  observed: p.observed as number,
                  count: Number(p.count ?? 0),
                },
              ],
        )
      : [];
  if (!isObj(cal)) return { raw: [], calibrated: [], info: {} };
  const info = Object.fromEntries(Object.entries(cal).filter(([, v]) => typeof v !== "object"));
  return { raw: pick(cal.reliability_raw), calibrated: pick(cal.reliability_calibrated), info };
}

const BACKTEST_COLS = [
  "policy",
  "accuracy",
  "acc_low",
  "acc_high",
  "best_baseline",
  "best_baseline_accuracy",
  "p_value",
  "p_value_holm",
  "ece",
  "ece_raw",
  "brier",
  "brier_climatology",
  "sharpe_net",
  "band_sharpe_net",
  "band_dsr",
  "buy_and_hold_sharpe",
  "coverage",
];

export interface BacktestView {
  tables: Table[];
  /** per horizon: what the triggered policy did (promotions, rollbacks, triggers by name) */
  events: { horizon: string; counts: Obj }[];
  window: string | null;
  feeBps: number | null;
}

/** `rayapp backtest`'s report (the newest backtest run, `backtest/summary.json`): one table per
 * horizon with a row per policy (never retrain, fixed weekly, triggered). */
export function backtest(report: Report | undefined): BacktestView {
  const bt = artifacts(report, "backtest")["backtest.summary"];
  const view: BacktestView = { tables: [], events: [], window: null, feeBps: null };
  if (!isObj(bt) || !isObj(bt.headline)) return view;
  if (isObj(bt.settings)) view.feeBps = numOrNull(bt.settings.fee_bps);
  const horizons = isObj(bt.horizons) ? bt.horizons : {};
  for (const [h, pols] of Object.entries(bt.headline)) {
    if (!isObj(pols)) continue;
    const rows = Object.entries(pols)
      .filter(([, f]) => isObj(f))
      .map(([policy, f]) => ({ policy, ...(f as Obj) }));
    if (!rows.length) continue;
    view.tables.push({
      name: `backtest ${h}h`,
      columns: BACKTEST_COLS.filter((c) => rows.some((r) => c in r)),
      rows,
    });
    const hz = horizons[h];
    if (isObj(hz)) {
      if (isObj(hz.event_counts)) view.events.push({ horizon: h, counts: hz.event_counts });
      if (
        view.window === null &&
        typeof hz.replay_from === "string" &&
        typeof hz.replay_to === "string"
      )
        view.window = `${hz.replay_from.slice(0, 10)} to ${hz.replay_to.slice(0, 10)}`;
    }
  }
  return view;
}
