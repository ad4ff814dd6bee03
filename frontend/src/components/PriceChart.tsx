// 7-day hourly price with the forecasts overlaid: a triangle per forecast (up/down, on the P(up)
// axis) and, at each forecast's target hour, its fan: the 50/80/90 % intervals as price bands
// over the realised closes. A forecast from a model without the interval model (the legacy
// constant-width band) draws its single band, labelled as such.
import {
  Area,
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  ReferenceLine,
  ResponsiveContainer,
  Scatter,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { useEffect, useEffectEvent, useRef } from "react";
import type { PricePoint } from "../api/types";
import type { Prediction } from "../api/types";
import { useTheme } from "../hooks/useTheme";
import { pct, usd } from "../lib/format";
import { chartColors } from "./ui";

const H = 3600_000;
// the fan darkens inwards: the 90 % band is the faintest, the 50 % one on top of both the darkest
const FAN_OPACITY: Record<number, number> = { 0.9: 0.15, 0.8: 0.2, 0.5: 0.3 };

export interface ChartRow {
  t: number;
  close?: number;
  /** the fan's price bands at this target hour: 50, 80 and 90 % */
  fan50?: [number, number];
  fan80?: [number, number];
  fan90?: [number, number];
  /** a legacy forecast's constant-width band (its level in `legacyLevel`) */
  legacy?: [number, number];
  legacyLevel?: number | null;
}

export const FAN_LEVELS = [0.9, 0.8, 0.5] as const;
type FanKey = "fan50" | "fan80" | "fan90";
const fanKey = (level: number): FanKey | null =>
  level === 0.5 ? "fan50" : level === 0.8 ? "fan80" : level === 0.9 ? "fan90" : null;

export const isLegacy = (p: Prediction) =>
  p.interval.method === "constant_conformal_legacy" || !(p.intervals ?? []).length;

/** A log-return band as prices: the server's prices, else close(t) * exp(.) from the chart's closes. */
function priced(
  b: {
    low: number | null;
    high: number | null;
    price_low?: number | null;
    price_high?: number | null;
  },
  c0: number | undefined,
): [number, number] | null {
  if (b.price_low != null && b.price_high != null) return [b.price_low, b.price_high];
  if (c0 === undefined || b.low === null || b.high === null) return null;
  return [c0 * Math.exp(b.low), c0 * Math.exp(b.high)];
}

export interface Marker {
  t: number;
  p_up: number;
  direction: number;
}

/** Rows by hour: closes, and for each forecast its fan (or legacy band) in prices at t+h. A band
 * needs its price: the one served with it, or a close at the forecast's hour to anchor it to. */
export function chartRows(prices: PricePoint[], preds: Prediction[]): ChartRow[] {
  const rows = new Map<number, ChartRow>();
  const row = (t: number) => rows.get(t) ?? (rows.set(t, { t }), rows.get(t)!);
  for (const p of prices) row(Date.parse(p.ts)).close = p.close;
  for (const p of preds) {
    if (!p.ts) continue;
    const t0 = Date.parse(p.ts);
    const c0 = rows.get(t0)?.close;
    const at = t0 + p.horizon_h * H;
    if (isLegacy(p)) {
      const band = priced(p.interval, c0);
      if (!band) continue;
      const r = row(at);
      r.legacy = band;
      r.legacyLevel = p.interval.level ?? null;
      continue;
    }
    for (const b of p.intervals ?? []) {
      const key = fanKey(b.level);
      const band = key && priced(b, c0);
      if (key && band) row(at)[key] = band;
    }
  }
  return [...rows.values()].sort((a, b) => a.t - b.t);
}

/** Forecasts in the window drawn as a fan, and as a legacy band. */
export function fanCounts(rows: ChartRow[]): { fans: number; legacy: number } {
  return {
    fans: rows.filter((r) => r.fan90 || r.fan80 || r.fan50).length,
    legacy: rows.filter((r) => r.legacy).length,
  };
}

export function markers(preds: Prediction[]): Marker[] {
  return preds
    .filter((p) => p.ts)
    .map((p) => ({ t: Date.parse(p.ts!), p_up: p.p_up, direction: p.direction }));
}

/** One tick per UTC midnight in [from, to]: readable at any width, stable between renders. */
export function dayTicks(from: number, to: number, stepDays = 1): number[] {
  const out: number[] = [];
  const step = stepDays * 86400e3;
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
  return out;
}

/** Ticks for a window: every 6 h up to 2 days, daily up to 2 weeks, weekly beyond. */
export function windowTicks(from: number, to: number): number[] {
  const days = (to - from) / 86400e3;
  if (days <= 2) {
    const out: number[] = [];
    for (let t = Math.ceil(from / (6 * H)) * 6 * H; t <= to; t += 6 * H) out.push(t);
    return out;
  }
  return dayTicks(from, to, days <= 14 ? 1 : 7);
}

const tickFor = (from: number, to: number) => (t: number) =>
  to - from <= 2 * 86400e3
    ? new Date(t).toISOString().slice(5, 13).replace("T", " ") + "h"
    : new Date(t).toISOString().slice(5, 10);

function Triangle(props: { cx?: number; cy?: number; fill?: string; up: boolean }) {
  const { cx = 0, cy = 0, fill, up } = props;
  const d = up
    ? `M${cx},${cy - 5} L${cx + 5},${cy + 4} L${cx - 5},${cy + 4} Z`
    : `M${cx},${cy + 5} L${cx + 5},${cy - 4} L${cx - 5},${cy - 4} Z`;
  return <path d={d} fill={fill} />;
}

export function PriceChart({
  prices,
  preds,
  pricesMissing,
  from,
  to,
  onZoom,
  onPan,
}: {
  prices: PricePoint[];
  preds: Prediction[];
  pricesMissing?: string;
  from: number;
  to: number;
  /** wheel over the chart: zoom by `factor` around `at` (0..1 across the plot) */
  onZoom?: (factor: number, at: number) => void;
  /** drag across the chart: move by `frac` of the visible span */
  onPan?: (frac: number) => void;
}) {
  const [theme] = useTheme();
  const c = chartColors(theme === "dark");
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ x: number; moved: number } | null>(null);
  const zoom = useEffectEvent((factor: number, at: number) => onZoom?.(factor, at));
  useEffect(() => {
    // a native listener: React's wheel handlers are passive and cannot stop the page scrolling
    const el = box.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const r = el.getBoundingClientRect();
      zoom(e.deltaY < 0 ? 0.8 : 1.25, r.width ? (e.clientX - r.left) / r.width : 0.5);
    };
    el.addEventListener("wheel", onWheel, { passive: false });
    return () => el.removeEventListener("wheel", onWheel);
  }, []);
  const rows = chartRows(prices, preds).filter((r) => r.t >= from && r.t <= to);
  const m = markers(preds).filter((x) => x.t >= from && x.t <= to);
  const ups = m.filter((x) => x.direction === 1);
  const downs = m.filter((x) => x.direction !== 1);
  const hasPrice = prices.length > 0 || rows.some((r) => r.fan90 || r.legacy);
  const counts = fanCounts(rows);
  const legacyLevel = rows.find((r) => r.legacy)?.legacyLevel;
  const legacyName = `legacy band${legacyLevel ? ` (${Math.round(legacyLevel * 100)} %)` : ""}, constant width`;
  const summary = `${rows.filter((r) => r.close !== undefined).length} hourly closes and ${m.length} forecasts (${ups.length} up, ${downs.length} down) from ${new Date(from).toISOString().slice(0, 13)}h to ${new Date(to).toISOString().slice(0, 13)}h UTC; ${counts.fans} forecast fans (50, 80 and 90 % intervals at the target hour)${counts.legacy ? ` and ${counts.legacy} legacy bands` : ""}`;
  return (
    <figure
      aria-label={`Price and forecasts chart: ${summary}`}
      data-testid="price-chart"
      data-fans={counts.fans}
      data-legacy-bands={counts.legacy}
    >
      {pricesMissing && (
        <p className="mb-2 text-xs text-amber-800 dark:text-amber-300">
          Price history unavailable ({pricesMissing}); showing forecasts only.
        </p>
      )}
      <div
        ref={box}
        className="h-72 w-full cursor-grab touch-pan-y select-none sm:h-80"
        data-testid="price-chart-plot"
        onPointerDown={(e) => {
          drag.current = { x: e.clientX, moved: 0 };
        }}
        onPointerMove={(e) => {
          const d = drag.current;
          const w = box.current?.getBoundingClientRect().width;
          if (!d || !w || !onPan) return;
          const dx = e.clientX - d.x;
          if (Math.abs(dx) < 8) return;
          d.x = e.clientX;
          onPan(-dx / w);
        }}
        onPointerUp={() => (drag.current = null)}
        onPointerLeave={() => (drag.current = null)}
      >
        <ResponsiveContainer width="100%" height="100%">
          <ComposedChart data={rows} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid stroke={c.grid} strokeDasharray="3 3" />
            <XAxis
              dataKey="t"
              type="number"
              scale="time"
              domain={[from, to]}
              tickFormatter={tickFor(from, to)}
              ticks={windowTicks(from, to)}
              stroke={c.axis}
              fontSize={11}
              minTickGap={24}
              allowDataOverflow
            />
            {hasPrice && (
              <YAxis
                yAxisId="price"
                orientation="left"
                stroke={c.axis}
                fontSize={11}
                width={64}
                domain={["auto", "auto"]}
                tickFormatter={(v: number) => `${Math.round(v / 1000)}k`}
              />
            )}
            <YAxis
              yAxisId="p"
              orientation="right"
              stroke={c.axis}
              fontSize={11}
              width={40}
              domain={[0, 1]}
              tickFormatter={(v: number) => `${Math.round(v * 100)}%`}
            />
            <ReferenceLine yAxisId="p" y={0.5} stroke={c.muted} strokeDasharray="4 4" />
            <Tooltip
              contentStyle={{ background: c.tooltipBg, borderColor: c.grid, fontSize: 12 }}
              labelFormatter={(t) =>
                `${new Date(Number(t)).toISOString().slice(0, 16).replace("T", " ")} UTC`
              }
              formatter={(v, name) =>
                Array.isArray(v)
                  ? [`${usd(v[0] as number)} – ${usd(v[1] as number)}`, name]
                  : name === "close"
                    ? [usd(v as number), "close"]
                    : [pct(v as number), name]
              }
            />
            {/* legend text in the page's own colour: a series' colour is not readable text */}
            <Legend
              wrapperStyle={{ fontSize: 12 }}
              formatter={(value: string) => (
                <span className="text-slate-700 dark:text-slate-200">{value}</span>
              )}
            />
            {hasPrice &&
              counts.fans > 0 &&
              FAN_LEVELS.map((level) => (
                <Area
                  key={level}
                  yAxisId="price"
                  dataKey={`fan${Math.round(level * 100)}`}
                  name={`${Math.round(level * 100)} % interval`}
                  className={`fan-${Math.round(level * 100)}`}
                  stroke="none"
                  fill={c.band}
                  fillOpacity={FAN_OPACITY[level]}
                  connectNulls
                  isAnimationActive={false}
                />
              ))}
            {hasPrice && counts.legacy > 0 && (
              <Area
                yAxisId="price"
                dataKey="legacy"
                name={legacyName}
                className="legacy-band"
                stroke={c.muted}
                strokeDasharray="3 3"
                fill={c.muted}
                fillOpacity={0.15}
                connectNulls
                isAnimationActive={false}
              />
            )}
            {hasPrice && (
              <Line
                yAxisId="price"
                dataKey="close"
                name="close"
                dot={false}
                stroke={c.price}
                strokeWidth={1.5}
                connectNulls
                isAnimationActive={false}
              />
            )}
            {/* A Scatter given no points draws the chart's own rows instead (a flat row of
                markers at 100 %): a series with nothing to show is left out. */}
            {ups.length > 0 && (
              <Scatter
                yAxisId="p"
                data={ups}
                dataKey="p_up"
                name="P(up), up call"
                fill={c.up}
                shape={(p: object) => <Triangle {...p} up />}
                isAnimationActive={false}
              />
            )}
            {downs.length > 0 && (
              <Scatter
                yAxisId="p"
                data={downs}
                dataKey="p_up"
                name="P(up), down call"
                fill={c.down}
                shape={(p: object) => <Triangle {...p} up={false} />}
                isAnimationActive={false}
              />
            )}
          </ComposedChart>
        </ResponsiveContainer>
      </div>
      <figcaption className="sr-only">{summary}</figcaption>
    </figure>
  );
}
