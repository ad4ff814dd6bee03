// Live track record from the predictions history: accuracy with its Wilson interval, the
// cumulative return of following the calls against buy-and-hold, and the live coverage of the
// served intervals at each nominal level (resolved forecasts inside their band).
import {
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { TrackRecord } from "../api/types";
import { useTheme } from "../hooks/useTheme";
import { pct, signedPct } from "../lib/format";
import { Card, chartColors, Empty, Stat } from "./ui";

export type LevelCoverage = NonNullable<TrackRecord["coverage"]>[number];

/** "90 % nominal: 88.7 % live over 150 resolved" */
export const coverageText = (c: LevelCoverage) =>
  `${Math.round(c.level * 100)} % nominal: ${pct(c.coverage)} live over ${c.resolved} resolved`;

// conformalized (CQR) volatility or quantile model, with adaptive conformal inference once it moves
const METHOD_LABEL: Record<string, string> = {
  cqr_vol: "CQR",
  cqr_vol_aci: "CQR + ACI",
  cqr_quantile: "CQR (quantile)",
  cqr_quantile_aci: "CQR (quantile) + ACI",
  constant_conformal_legacy: "legacy constant band",
};

export function CoverageTable({ coverage }: { coverage: LevelCoverage[] }) {
  if (!coverage.length)
    return (
      <div data-testid="coverage-empty">
        <Empty>Interval coverage appears once a forecast with intervals has resolved.</Empty>
      </div>
    );
  return (
    <table className="w-full text-sm" data-testid="coverage-table">
      <caption className="mb-1 text-left text-xs text-slate-600 dark:text-slate-400">
        Interval coverage, live against nominal (resolved forecasts inside their interval)
      </caption>
      <thead>
        <tr className="text-left text-xs text-slate-600 dark:text-slate-400">
          <th scope="col">Nominal</th>
          <th scope="col">Live</th>
          <th scope="col">95% CI</th>
          <th scope="col">Resolved</th>
          <th scope="col">Interval</th>
        </tr>
      </thead>
      <tbody>
        {coverage.map((c) => {
          const [lo, hi] = c.coverage_ci95;
          return (
            <tr
              key={c.level}
              data-testid="coverage-row"
              data-level={c.level}
              data-resolved={c.resolved}
              data-covered={c.covered}
              aria-label={coverageText(c)}
              className="tabular"
            >
              <td>{Math.round(c.level * 100)} %</td>
              <td>{pct(c.coverage)}</td>
              <td>{lo === null || hi === null ? "–" : `${pct(lo, 0)} – ${pct(hi, 0)}`}</td>
              <td>{c.resolved}</td>
              <td className="text-xs">{c.methods.map((m) => METHOD_LABEL[m] ?? m).join(", ")}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function TrackRecordPanel({ tr }: { tr: TrackRecord }) {
  const [theme] = useTheme();
  const c = chartColors(theme === "dark");
  const [lo, hi] = tr.accuracy_ci95;
  const series = tr.series.map((s) => ({
    t: Date.parse(String(s.ts)),
    strategy: Number(s.strategy),
    buy_and_hold: Number(s.buy_and_hold),
  }));
  // dates for a long record, hours for a short one (a day of hourly calls would repeat the date)
  const span = series.length ? series[series.length - 1].t - series[0].t : 0;
  const tickFmt = (t: number) =>
    new Date(t).toISOString().slice(span > 2 * 86400e3 ? 5 : 11, span > 2 * 86400e3 ? 10 : 16);
  return (
    <Card id="track" title="Live track record">
      <div className="mb-3 grid grid-cols-2 gap-3 sm:grid-cols-4">
        <Stat
          testId="track-accuracy"
          label="Directional accuracy"
          value={pct(tr.accuracy)}
          sub={
            lo === null || hi === null ? "no resolved calls yet" : `95% CI ${pct(lo)} – ${pct(hi)}`
          }
        />
        <Stat
          label="Resolved / pending"
          value={`${tr.resolved} / ${tr.pending}`}
          sub={`${tr.hits} hits`}
        />
        <Stat label="Strategy (cumulative)" value={signedPct(tr.cumulative_return)} />
        <Stat label="Buy and hold" value={signedPct(tr.buy_and_hold_return)} />
      </div>
      {series.length < 2 ? (
        <Empty>The cumulative return chart appears once two forecasts have resolved.</Empty>
      ) : (
        <div
          className="h-48 w-full"
          aria-label="Cumulative return of the strategy against buy and hold"
          role="img"
        >
          <ResponsiveContainer width="100%" height="100%">
            <LineChart data={series} margin={{ top: 4, right: 8, bottom: 0, left: 0 }}>
              <CartesianGrid stroke={c.grid} strokeDasharray="3 3" />
              <XAxis
                dataKey="t"
                type="number"
                scale="time"
                domain={["dataMin", "dataMax"]}
                stroke={c.axis}
                fontSize={11}
                tickFormatter={tickFmt}
                minTickGap={40}
              />
              <YAxis
                stroke={c.axis}
                fontSize={11}
                width={48}
                tickFormatter={(v: number) => `${(v * 100).toFixed(1)}%`}
              />
              <Tooltip
                contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
                labelFormatter={(t) =>
                  new Date(Number(t)).toISOString().slice(0, 16).replace("T", " ") + " UTC"
                }
                formatter={(v, n) => [signedPct(v as number, 2), n]}
              />
              <Legend wrapperStyle={{ fontSize: 12 }} />
              <Line
                dataKey="strategy"
                name="follow the calls"
                dot={false}
                stroke={c.price}
                isAnimationActive={false}
              />
              <Line
                dataKey="buy_and_hold"
                name="buy and hold"
                dot={false}
                stroke={c.muted}
                isAnimationActive={false}
              />
            </LineChart>
          </ResponsiveContainer>
        </div>
      )}
      <div className="mt-3">
        <CoverageTable coverage={tr.coverage ?? []} />
      </div>
      {tr.overlapping && (
        <p className="mt-2 text-xs text-slate-600 dark:text-slate-400">
          Horizons overlap (h &gt; 1 with hourly calls), so the cumulative figures overstate a
          tradable strategy.
        </p>
      )}
    </Card>
  );
}
