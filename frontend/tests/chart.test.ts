import { describe, expect, it } from "vitest";
import type { Explanation, Prediction } from "../src/api/types";
import { feedRows } from "../src/components/LiveFeedPanel";
import { chartRows, dayTicks, fanCounts, isLegacy, markers } from "../src/components/PriceChart";
import { topContributions } from "../src/components/ShapChart";
import { prediction } from "./wsServer";

const P = (ts: string, p = 0.6) => prediction(ts, p) as unknown as Prediction;

describe("price chart data", () => {
  const prices = [
    { ts: "2026-01-01T10:00:00Z", close: 100 },
    { ts: "2026-01-01T11:00:00Z", close: 101 },
  ];
  const band = (level: number, lo: number, hi: number, priced = false) => ({
    level,
    low: Math.log(lo),
    high: Math.log(hi),
    price_low: priced ? 1000 * lo : null,
    price_high: priced ? 1000 * hi : null,
  });

  it("turns each forecast's 50/80/90 % intervals into a fan of price bands at its target hour", () => {
    const p = {
      ...P("2026-01-01T10:00:00Z"),
      intervals: [band(0.5, 0.995, 1.005), band(0.8, 0.99, 1.01), band(0.9, 0.98, 1.02)],
    };
    const rows = chartRows(prices, [p]);
    expect(rows).toHaveLength(2);
    expect(rows[1].close).toBe(101);
    expect(rows[1].fan90![0]).toBeCloseTo(98);
    expect(rows[1].fan90![1]).toBeCloseTo(102);
    expect(rows[1].fan80![0]).toBeCloseTo(99);
    expect(rows[1].fan50![1]).toBeCloseTo(100.5);
    expect(rows[1].legacy).toBeUndefined();
    expect(fanCounts(rows)).toEqual({ fans: 1, legacy: 0 });
    // without served prices and no close at its hour there is nothing to anchor it to
    expect(chartRows([], [p])).toEqual([]);
    // the prices served with the forecast are used as they are, close or no close
    const served = { ...p, intervals: [band(0.9, 0.98, 1.02, true)] };
    expect(chartRows([], [served])[0].fan90).toEqual([980, 1020]);
  });

  it("draws a legacy forecast's single band, labelled, not as a fan", () => {
    const p = {
      ...P("2026-01-01T10:00:00Z"),
      interval: { ...P("2026-01-01T10:00:00Z").interval, method: "constant_conformal_legacy" },
      intervals: [band(0.9, 0.99, 1.02)],
      quantiles: null,
      volatility: null,
    };
    const rows = chartRows(prices, [p]);
    expect(rows[1].fan90).toBeUndefined();
    expect(rows[1].legacy![0]).toBeCloseTo(100 * Math.exp(p.interval.low!));
    expect(rows[1].legacyLevel).toBe(0.9);
    expect(isLegacy(p)).toBe(true);
    // a row logged before the served distribution has no `intervals`: its band is the legacy one
    const old = { ...P("2026-01-01T10:00:00Z"), intervals: [] };
    expect(isLegacy(old)).toBe(true);
    expect(fanCounts(chartRows(prices, [old]))).toEqual({ fans: 0, legacy: 1 });
  });
  it("places markers by direction and P(up)", () => {
    expect(markers([P("2026-01-01T10:00:00Z", 0.3)])).toEqual([
      { t: Date.parse("2026-01-01T10:00:00Z"), p_up: 0.3, direction: -1 },
    ]);
  });
  it("ticks at each UTC midnight in range", () => {
    const from = Date.parse("2026-01-01T05:00:00Z");
    expect(
      dayTicks(from, from + 3 * 86400e3).map((t) => new Date(t).toISOString().slice(0, 10)),
    ).toEqual(["2026-01-02", "2026-01-03", "2026-01-04"]);
  });
});

describe("feed rows", () => {
  it("puts socket items first, then older history without duplicates", () => {
    const a = P("2026-01-01T12:00:00Z");
    const b = P("2026-01-01T11:00:00Z");
    const c = P("2026-01-01T10:00:00Z");
    const rows = feedRows([a], [c, a, b]);
    expect(rows.map((r) => [r.p.ts, r.live])).toEqual([
      [a.ts, true],
      [b.ts, false],
      [c.ts, false],
    ]);
    expect(feedRows([], [a, b, c], 2)).toHaveLength(2);
  });
});

describe("SHAP bars", () => {
  it("keeps the largest contributions by magnitude", () => {
    const e = {
      method: "pred_contribs",
      model_version: "1",
      units: "log-odds",
      base_value: 0,
      margin: 0,
      contributions: { a: 0.1, b: -0.5, c: 0.3 },
      top_positive: [],
      top_negative: [],
      text: "",
    } satisfies Explanation;
    expect(topContributions(e, 2)).toEqual([
      { feature: "b", value: -0.5 },
      { feature: "c", value: 0.3 },
    ]);
  });
});
