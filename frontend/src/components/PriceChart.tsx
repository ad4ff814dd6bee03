// 7-day hourly price with the forecasts overlaid: a triangle per forecast (up/down, on the P(up)
// axis) and the conformal interval turned into a price band at the forecast's target hour.
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

export interface ChartRow {
  t: number;
  close?: number;
  band?: [number, number];
}

export interface Marker {
  t: number;
  p_up: number;
  direction: number;
}

/** Rows by hour: closes, and for each forecast with a known close at its hour, the price band at t+h. */
export function chartRows(prices: PricePoint[], preds: Prediction[]): ChartRow[] {
  const rows = new Map<number, ChartRow>();
  const row = (t: number) => rows.get(t) ?? (rows.set(t, { t }), rows.get(t)!);
  for (const p of prices) row(Date.parse(p.ts)).close = p.close;
  for (const p of preds) {
    if (!p.ts || p.interval.low === null || p.interval.high === null) continue;
    const t0 = Date.parse(p.ts);
    const c0 = rows.get(t0)?.close;
    if (c0 === undefined) continue;
    row(t0 + p.horizon_h * H).band = [
      c0 * Math.exp(p.interval.low),
      c0 * Math.exp(p.interval.high),
    ];
  }
  return [...rows.values()].sort((a, b) => a.t - b.t);
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
  const hasPrice = prices.length > 0;
  const summary = `${rows.filter((r) => r.close !== undefined).length} hourly closes and ${m.length} forecasts (${ups.length} up, ${downs.length} down) from ${new Date(from).toISOString().slice(0, 13)}h to ${new Date(to).toISOString().slice(0, 13)}h UTC`;
  return (
    <figure aria-label={`Price and forecasts chart: ${summary}`} data-testid="price-chart">
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
            <Legend wrapperStyle={{ fontSize: 12 }} />
            {hasPrice && (
              <Area
                yAxisId="price"
                dataKey="band"
                name="interval at target hour"
                stroke="none"
                fill={c.band}
                fillOpacity={0.2}
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
