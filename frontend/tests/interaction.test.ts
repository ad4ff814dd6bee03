// Zoom/pan of the chart window, the forecast filter, the refresh setting and the Models rules.
import { describe, expect, it } from "vitest";
import { refreshPeriod } from "../src/hooks/useRefresh";
import { importanceRows, roleOf } from "../src/lib/models";
import type { Models } from "../src/api/types";
import { clampWindow, H, panWindow, passes, zoomWindow } from "../src/lib/timeWindow";

const full: [number, number] = [0, 168 * H];

describe("chart window", () => {
  it("zooms around the pointer and never leaves the fetched range", () => {
    expect(zoomWindow(full, full, 0.5)).toEqual([42 * H, 126 * H]);
    expect(zoomWindow(full, full, 0.5, 1)).toEqual([84 * H, 168 * H]);
    expect(zoomWindow([0, 10 * H], full, 4)).toEqual([0, 40 * H]);
    expect(zoomWindow(full, full, 2)).toEqual(full);
    expect(
      zoomWindow([10 * H, 11 * H], full, 0.1)[1] - zoomWindow([10 * H, 11 * H], full, 0.1)[0],
    ).toBe(3 * H);
  });
  it("pans by a share of the span, stopping at either end", () => {
    expect(panWindow([24 * H, 48 * H], full, -0.5)).toEqual([12 * H, 36 * H]);
    expect(panWindow([0, 24 * H], full, -0.5)).toEqual([0, 24 * H]);
    expect(panWindow([144 * H, 168 * H], full, 1)).toEqual([144 * H, 168 * H]);
    expect(clampWindow([-5 * H, 500 * H], full)).toEqual(full);
  });
});

describe("forecast filter", () => {
  const up = { p_up: 0.62, direction: 1 as const };
  const down = { p_up: 0.45, direction: -1 as const };
  it("keeps forecasts by direction and by |P(up) − 0.5|", () => {
    expect(passes(up, { direction: "all", minConfidence: 0 })).toBe(true);
    expect(passes(up, { direction: "down", minConfidence: 0 })).toBe(false);
    expect(passes(down, { direction: "down", minConfidence: 0.05 })).toBe(true);
    expect(passes(down, { direction: "all", minConfidence: 0.1 })).toBe(false);
    expect(passes(up, { direction: "up", minConfidence: 0.1 })).toBe(true);
  });
});

describe("refresh setting", () => {
  it("pauses every poll, or fixes the period, or keeps each panel's own", () => {
    expect(refreshPeriod({ rate: "auto", paused: false }, 10000)).toBe(10000);
    expect(refreshPeriod({ rate: 5000, paused: false }, 60000)).toBe(5000);
    expect(refreshPeriod({ rate: 5000, paused: true }, 60000)).toBe(false);
  });
});

describe("models", () => {
  const m = {
    name: "m",
    registered: true,
    aliases: { champion: "3", challenger: null, shadow: null },
    versions: [],
    serving: { champion: { loaded: true, version: "3" }, shadow: null },
    lifecycle: {
      available: true,
      state: {
        model_name: "m",
        shadow_version: "4",
        shadow_role: "challenger",
        shadow_since: null,
        last_retrain_at: null,
        retrain_running: false,
      },
      live: [],
      latest_comparison: null,
      events: [],
    },
  } as unknown as Models;
  const v = (version: string, aliases: string[]) =>
    ({ version, aliases, run_id: null, created_at: null, tags: {} }) as Models["versions"][number];
  it("names each version's role", () => {
    expect(roleOf(v("3", ["champion"]), m)).toBe("champion");
    expect(roleOf(v("4", []), m)).toBe("shadow");
    expect(roleOf(v("5", ["challenger"]), m)).toBe("challenger");
    expect(roleOf(v("2", []), m)).toBe("retired");
  });
  it("turns importance per version into rows, oldest first, top features", () => {
    const { features, rows } = importanceRows(
      [
        {
          version: "3",
          run_id: "b",
          created_at: null,
          aliases: [],
          importance: { rsi: 0.3, vol: 0.1 },
        },
        {
          version: "2",
          run_id: "a",
          created_at: null,
          aliases: [],
          importance: { rsi: 0.2, vol: 0.4 },
        },
        { version: "1", run_id: null, created_at: null, aliases: [], importance: null },
      ],
      1,
    );
    expect(features).toEqual(["rsi"]);
    expect(rows).toEqual([
      { version: "v2", rsi: 0.2 },
      { version: "v3", rsi: 0.3 },
    ]);
  });
});
