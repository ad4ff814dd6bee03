// Analytics: walk-forward folds with intervals, baselines beside the model, the ablation with
// p-values, global importance and the reliability curve, all from /report and /model; CSV export.
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { useModel, useReport } from "../api/queries";
import { btn, Card, chartColors, Empty, ErrorNote, Loading } from "../components/ui";
import { useTheme } from "../hooks/useTheme";
import { download, type Table, toCsv } from "../lib/csv";
import { num } from "../lib/format";
import {
  ablationTables,
  backtest,
  baselineTable,
  foldTable,
  importance,
  reliability,
} from "../lib/report";

function fmt(col: string, v: unknown): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (col.startsWith("p_")) return v < 0.001 ? "<0.001" : v.toFixed(3);
    if (Number.isInteger(v)) return String(v);
    return num(v, 4);
  }
  return v === null || v === undefined ? "–" : String(v);
}

function DataTable({ t, caption }: { t: Table; caption: string }) {
  // focusable so keyboard users can scroll a wide table sideways
  return (
    <div className="overflow-x-auto" tabIndex={0} role="region" aria-label={caption}>
      <table
        className="w-full min-w-max text-left text-sm"
        data-testid={`table-${t.name.replace(/\s+/g, "-")}`}
      >
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr className="border-b border-slate-300 dark:border-slate-700">
            {t.columns.map((c) => (
              <th key={c} scope="col" className="px-2 py-1.5 font-semibold whitespace-nowrap">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="tabular">
          {t.rows.map((r, i) => (
            <tr
              key={i}
              className={`border-b border-slate-200 dark:border-slate-800 ${r.significant === true ? "bg-emerald-50 dark:bg-emerald-950" : ""}`}
            >
              {t.columns.map((c) => (
                <td key={c} className="px-2 py-1 whitespace-nowrap">
                  {fmt(c, r[c])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const csvButton = (tables: Table[], file: string, label = "CSV") => (
  <button
    type="button"
    className={btn}
    onClick={() => download(file, toCsv(tables))}
    aria-label={`Download ${file}`}
  >
    <span aria-hidden="true">↓</span> {label}
  </button>
);

export default function Analytics() {
  const model = useModel();
  const report = useReport();
  const [theme] = useTheme();
  const c = chartColors(theme === "dark");
  if (model.isLoading || report.isLoading) return <Loading what="report" />;
  if (model.isError) return <ErrorNote error={model.error} retry={() => void model.refetch()} />;

  const folds = foldTable(model.data);
  const baselines = baselineTable(model.data);
  const ablation = ablationTables(report.data);
  const imp = importance(report.data);
  const rel = reliability(report.data);
  const bt = backtest(report.data);
  const all = [folds, baselines, ...ablation, ...bt.tables].filter((t): t is Table => t !== null);
  const impTable: Table = { name: "importance", columns: ["feature", "value"], rows: imp };
  const gate = model.data?.gate ?? {};

  return (
    <div className="grid gap-4">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h1 className="text-lg font-semibold">Model v{model.data?.version ?? "–"} evaluation</h1>
        {all.length > 0 &&
          csvButton(
            [...all, ...(imp.length ? [impTable] : [])],
            `rayapp-report-v${model.data?.version ?? "none"}.csv`,
            "Download all tables (CSV)",
          )}
      </div>
      {report.isError && <ErrorNote error={report.error} retry={() => void report.refetch()} />}
      {"promote" in gate && (
        <p className="text-sm" data-testid="gate">
          Quality gate: <strong>{gate.promote ? "promoted" : "refused"}</strong>
          {Array.isArray(gate.reasons) &&
            gate.reasons.length > 0 &&
            ` – ${(gate.reasons as string[]).join("; ")}`}
        </p>
      )}
      <Card
        id="folds"
        title="Walk-forward folds (accuracy with 95% interval)"
        actions={folds && csvButton([folds], "folds.csv")}
      >
        {folds ? (
          <DataTable t={folds} caption="Per-fold metrics" />
        ) : (
          <Empty>This model's bundle has no per-fold metrics.</Empty>
        )}
      </Card>
      <Card
        id="baselines"
        title="Model vs baselines (out-of-fold)"
        actions={baselines && csvButton([baselines], "baselines.csv")}
      >
        {baselines ? (
          <DataTable t={baselines} caption="Model and baseline metrics" />
        ) : (
          <Empty>No baseline metrics in this model's bundle.</Empty>
        )}
      </Card>
      <Card
        id="ablation"
        title="Ablation (p-values: paired t-test, block bootstrap, Holm-adjusted)"
        actions={ablation.length > 0 && csvButton(ablation, "ablation.csv")}
      >
        {ablation.length ? (
          ablation.map((t) => (
            <div key={t.name} className="mb-3">
              <h3 className="mb-1 text-sm font-medium">{t.name}</h3>
              <DataTable t={t} caption={t.name} />
            </div>
          ))
        ) : (
          <Empty>
            No ablation table has been logged (run <code>rayapp ablate</code>).
          </Empty>
        )}
      </Card>
      <Card
        id="backtest"
        title={`Backtest of the lifecycle policy${bt.window ? ` (${bt.window})` : ""}`}
        actions={bt.tables.length > 0 && csvButton(bt.tables, "backtest.csv")}
      >
        {bt.tables.length ? (
          <>
            {bt.tables.map((t) => (
              <div key={t.name} className="mb-3">
                <h3 className="mb-1 text-sm font-medium">{t.name}</h3>
                <DataTable t={t} caption={t.name} />
              </div>
            ))}
            <p className="text-xs text-slate-600 dark:text-slate-400">
              Accuracy with a 95% Wilson interval; p: one-sided block bootstrap against the best
              naive baseline (blocks at least the horizon long), Holm over every horizon and policy;
              Sharpe after a {bt.feeBps ?? "–"} bps fee per unit of position change, annualised;
              band: flat inside a no-trade band chosen on calibration weeks only; DSR: deflated
              Sharpe ratio over the configurations tried.
            </p>
            {bt.events.map((e) => (
              <p key={e.horizon} className="text-xs" data-testid={`backtest-events-${e.horizon}`}>
                {e.horizon}h triggered policy:{" "}
                {Object.entries(e.counts)
                  .filter(([, v]) => typeof v === "number")
                  .map(([k, v]) => `${k} ${String(v)}`)
                  .join(" · ")}
              </p>
            ))}
          </>
        ) : (
          <Empty>
            No backtest has been logged (run <code>rayapp backtest</code>).
          </Empty>
        )}
      </Card>
      <div className="grid gap-4 lg:grid-cols-2">
        <Card
          id="importance"
          title="Global feature importance (mean |SHAP|)"
          actions={imp.length > 0 && csvButton([impTable], "importance.csv")}
        >
          {imp.length ? (
            <div
              style={{ height: imp.length * 22 + 40 }}
              role="img"
              aria-label={`Importance: ${imp.map((d) => d.feature).join(", ")}`}
            >
              <ResponsiveContainer width="100%" height="100%">
                <BarChart data={imp} layout="vertical" margin={{ left: 8, right: 16 }}>
                  <CartesianGrid stroke={c.grid} strokeDasharray="3 3" horizontal={false} />
                  <XAxis type="number" stroke={c.axis} fontSize={11} />
                  <YAxis
                    type="category"
                    dataKey="feature"
                    stroke={c.axis}
                    fontSize={11}
                    width={130}
                  />
                  <Tooltip
                    contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
                    formatter={(v) => [num(v, 4), "mean |SHAP|"]}
                  />
                  <Bar dataKey="value" fill={c.price} isAnimationActive={false} />
                </BarChart>
              </ResponsiveContainer>
            </div>
          ) : (
            <Empty>No global importance in this training run's report.</Empty>
          )}
        </Card>
        <Card id="reliability" title="Reliability (calibration) curve">
          {rel.raw.length || rel.calibrated.length ? (
            <>
              <div
                className="h-64"
                role="img"
                aria-label="Observed frequency of up moves against predicted probability"
              >
                <ResponsiveContainer width="100%" height="100%">
                  <LineChart margin={{ left: 0, right: 16 }}>
                    <CartesianGrid stroke={c.grid} strokeDasharray="3 3" />
                    <XAxis
                      type="number"
                      dataKey="mean_pred"
                      domain={[0, 1]}
                      stroke={c.axis}
                      fontSize={11}
                      name="predicted"
                    />
                    <YAxis type="number" domain={[0, 1]} stroke={c.axis} fontSize={11} width={36} />
                    <Tooltip
                      contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
                      formatter={(v) => num(v, 3)}
                    />
                    <Legend wrapperStyle={{ fontSize: 12 }} />
                    <Line
                      data={[
                        { mean_pred: 0, observed: 0 },
                        { mean_pred: 1, observed: 1 },
                      ]}
                      dataKey="observed"
                      name="perfect"
                      stroke={c.muted}
                      strokeDasharray="4 4"
                      dot={false}
                      isAnimationActive={false}
                    />
                    <Line
                      data={rel.raw}
                      dataKey="observed"
                      name="raw"
                      stroke={c.down}
                      isAnimationActive={false}
                    />
                    <Line
                      data={rel.calibrated}
                      dataKey="observed"
                      name="calibrated"
                      stroke={c.up}
                      isAnimationActive={false}
                    />
                  </LineChart>
                </ResponsiveContainer>
              </div>
              <p className="text-xs text-slate-600 dark:text-slate-400">
                {Object.entries(rel.info)
                  .map(([k, v]) => `${k}: ${fmt(k, v)}`)
                  .join(" · ")}
              </p>
            </>
          ) : (
            <Empty>No calibration report in this training run.</Empty>
          )}
        </Card>
      </div>
    </div>
  );
}
