// The time charts' interaction: range presets (what is fetched), and zoom and pan of the visible
// window inside it (what is drawn), plus the forecast filter by direction and confidence.
import type { Prediction } from "../api/types";

export const H = 3600e3;
export const PRESETS = [
  { key: "24h", label: "24 h", hours: 24 },
  { key: "7d", label: "7 d", hours: 168 },
  { key: "30d", label: "30 d", hours: 720 },
  // the API's /prices limit (90 days of hourly candles)
  { key: "all", label: "all", hours: 24 * 90 },
] as const;
export type PresetKey = (typeof PRESETS)[number]["key"];
export const presetHours = (k: PresetKey): number => PRESETS.find((p) => p.key === k)!.hours;

export type Window = [number, number];
const MIN_SPAN = 3 * H;

/** Keep `w` inside `full`, at least MIN_SPAN wide (or `full` when that is narrower). */
export function clampWindow(w: Window, full: Window): Window {
  const span = Math.min(Math.max(w[1] - w[0], MIN_SPAN), full[1] - full[0]);
  let a = Math.max(full[0], Math.min(w[0], full[1] - span));
  if (!Number.isFinite(a)) a = full[0];
  return [a, a + span];
}

/** Zoom by `factor` (< 1 in, > 1 out) around the point at `at` (0 = left edge, 1 = right edge). */
export function zoomWindow(w: Window, full: Window, factor: number, at = 0.5): Window {
  const span = (w[1] - w[0]) * factor;
  const pivot = w[0] + (w[1] - w[0]) * at;
  return clampWindow([pivot - span * at, pivot - span * at + span], full);
}

/** Move by `frac` of the visible span (negative = back in time). */
export function panWindow(w: Window, full: Window, frac: number): Window {
  const d = (w[1] - w[0]) * frac;
  return clampWindow([w[0] + d, w[1] + d], full);
}

export type Direction = "all" | "up" | "down";
export interface ForecastFilter {
  direction: Direction;
  /** minimum |P(up) − 0.5|, e.g. 0.1 = at least 60 % either way */
  minConfidence: number;
}
export const NO_FILTER: ForecastFilter = { direction: "all", minConfidence: 0 };
export const CONFIDENCE_STEPS = [0, 0.05, 0.1, 0.15, 0.2];

export const confidence = (p: Pick<Prediction, "p_up">): number => Math.abs(p.p_up - 0.5);

export function passes(p: Pick<Prediction, "p_up" | "direction">, f: ForecastFilter): boolean {
  if (f.direction === "up" && p.direction !== 1) return false;
  if (f.direction === "down" && p.direction === 1) return false;
  return confidence(p) >= f.minConfidence - 1e-12;
}
