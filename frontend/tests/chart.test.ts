import { describe, expect, it } from "vitest";
import type { Explanation, Prediction } from "../src/api/types";
import { feedRows } from "../src/components/LiveFeedPanel";
import { chartRows, dayTicks, markers } from "../src/components/PriceChart";
import { topContributions } from "../src/components/ShapChart";
import { prediction } from "./wsServer";

const P = (ts: string, p = 0.6) => prediction(ts, p) as unknown as Prediction;

describe("price chart data", () => {
  it("turns each forecast's interval into a price band at its target hour", () => {
    const prices = [
      { ts: "2026-01-01T10:00:00Z", close: 100 },
      { ts: "2026-01-01T11:00:00Z", close: 101 },
    ];
    const p = {
      ...P("2026-01-01T10:00:00Z"),
      horizon_h: 1,
      interval: { low: Math.log(0.99), high: Math.log(1.02), coverage: 0.9 },
    };
    const rows = chartRows(prices, [p]);
    expect(rows).toHaveLength(2);
    expect(rows[1].close).toBe(101);
    expect(rows[1].band![0]).toBeCloseTo(99);
    expect(rows[1].band![1]).toBeCloseTo(102);
    // a forecast whose hour has no close gets no band (nothing to anchor it to)
    expect(chartRows([], [p])).toEqual([]);
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
