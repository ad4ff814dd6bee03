// Pull the Analytics tables out of /report and /model. The report is the training run's JSON
// artifacts keyed by path ("training.calibration", "explain.shap_importance", "ablation.<period>"),
// so each reader checks the shape it expects and returns nothing rather than guessing.
import type { ModelInfo, Report } from "../api/types";
import type { Table } from "./csv";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const numOrNull = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);

function artifacts(report: Report | undefined, part: "training" | "ablation"): Obj {
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
