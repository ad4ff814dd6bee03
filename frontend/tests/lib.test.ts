import { describe, expect, it } from "vitest";
import { cell, toCsv } from "../src/lib/csv";
import {
  ablationTables,
  backtest,
  baselineTable,
  foldTable,
  importance,
  reliability,
} from "../src/lib/report";
import { parseFeature, symbolError, validateVector } from "../src/lib/validation";
import type { ModelInfo, Report } from "../src/api/types";
import { clockElapsedS, clockNow, cronPeriodS, speedLabel } from "../src/lib/clock";
import { FRESH_WARN_S, jobWarnS, staleLevel } from "../src/lib/health";
import { grafanaLinks } from "../src/lib/grafana";
import { alertBadgeLabel, alertSummary, isWebUrl, recentlyResolved } from "../src/lib/alerts";
import { alert } from "./apiServer";

describe("validation", () => {
  it("checks symbols like the API does", () => {
    expect(symbolError("BTCUSDT")).toBeNull();
    expect(symbolError("")).toMatch(/Enter a symbol/);
    expect(symbolError("btc")).toMatch(/upper-case/);
    expect(symbolError("B")).toMatch(/2–20/);
    expect(symbolError("ETHUSDT", ["BTCUSDT"])).toMatch(/Not served/);
  });
  it("parses feature values: empty is missing, junk and non-finite are errors", () => {
    expect(parseFeature("")).toEqual({ value: null, error: null });
    expect(parseFeature(" -1.5e-3 ")).toEqual({ value: -0.0015, error: null });
    expect(parseFeature("1,5").error).toMatch(/Not a number/);
    expect(parseFeature("Infinity").error).toMatch(/Not a number/);
    expect(parseFeature("1e999").error).toMatch(/finite/);
    expect(parseFeature("NaN").error).toMatch(/Not a number/);
  });
  it("validates a whole vector and refuses an all-missing one", () => {
    const v = validateVector(["a", "b", "c"], { a: "1", b: "x" });
    expect(v.values).toEqual({ a: 1, b: null, c: null });
    expect(v.errors).toEqual({ b: "Not a number." });
    expect(v.missing).toBe(1);
    expect(validateVector(["a"], {}).errors._form).toMatch(/at least one/);
  });
});

describe("csv", () => {
  it("quotes per RFC 4180", () => {
    expect(cell('say "hi", ok')).toBe('"say ""hi"", ok"');
    expect(cell(null)).toBe("");
    expect(cell(0.5)).toBe("0.5");
  });
  it("writes one table plainly and several with a table column", () => {
    const a = { name: "a", columns: ["x"], rows: [{ x: 1 }] };
    const b = { name: "b", columns: ["y"], rows: [{ y: "q,r" }] };
    expect(toCsv([a])).toBe("x\r\n1\r\n");
    expect(toCsv([a, b])).toBe('table,x,y\r\na,1,\r\nb,,"q,r"\r\n');
  });
});

// Shapes as training logs them (rayapp/training/pipeline.py, ablation.py via mlflow.log_table).
const model = {
  loaded: true,
  version: "4",
  feature_names: [],
  swaps: 0,
  data_range: [],
  cv_metrics: {
    mean: { accuracy: 0.53 },
    folds: [
      { fold: 0, accuracy: 0.52, acc_low: 0.5, acc_high: 0.54, sharpe_net: 0.3 },
      { fold: 1, accuracy: 0.54, acc_low: 0.52, acc_high: 0.56, sharpe_net: 0.5 },
    ],
    pooled: { accuracy: 0.53, acc_low: 0.52, acc_high: 0.54 },
  },
  baselines: {
    mean: { always_up: { accuracy: 0.51 } },
    pooled: {
      always_up: { accuracy: 0.51, acc_low: 0.5, acc_high: 0.52 },
      persistence: { accuracy: 0.49 },
    },
    best: "always_up",
  },
  gate: {},
} as unknown as ModelInfo;

const report = {
  model_version: "4",
  run_id: "r",
  reports: {
    training: {
      artifacts: {
        "explain.shap_importance": { rsi: 0.2, sma_20: 0.05, bad: "x" },
        "training.calibration": {
          method: "isotonic",
          brier_raw: 0.25,
          reliability_raw: [
            { bin_low: 0, bin_high: 0.1, mean_pred: 0.05, observed: 0.1, count: 3 },
          ],
          reliability_calibrated: [
            { mean_pred: 0.5, observed: 0.52, count: 40 },
            { mean_pred: "x", observed: 1 },
          ],
        },
      },
    },
    ablation: {
      artifacts: {
        "ablation.all": {
          columns: ["config", "accuracy", "p_boot", "significant"],
          data: [
            ["price_only", 0.52, 0.03, true],
            ["all_minus_x", 0.5, 0.4, false],
          ],
        },
        "ablation.all_groups": { price: { has_data: true } },
        "ablation.all_md": "# table",
      },
    },
  },
} as unknown as Report;

describe("report readers", () => {
  it("reads folds with their intervals", () => {
    const t = foldTable(model)!;
    expect(t.columns.slice(0, 4)).toEqual(["fold", "accuracy", "acc_low", "acc_high"]);
    expect(t.rows).toHaveLength(2);
  });
  it("puts the model beside the pooled baselines and marks the best", () => {
    const t = baselineTable(model)!;
    expect(t.rows.map((r) => r.name)).toEqual(["model", "always_up", "persistence"]);
    expect(t.rows[1].best).toBe("best baseline");
  });
  it("reads the ablation log_table and ignores other artifacts", () => {
    const [t, ...rest] = ablationTables(report);
    expect(rest).toHaveLength(0);
    expect(t.name).toBe("ablation all");
    expect(t.rows[0]).toEqual({
      config: "price_only",
      accuracy: 0.52,
      p_boot: 0.03,
      significant: true,
    });
  });
  it("reads importance (numbers only, largest first) and the reliability curves", () => {
    expect(importance(report)).toEqual([
      { feature: "rsi", value: 0.2 },
      { feature: "sma_20", value: 0.05 },
    ]);
    const r = reliability(report);
    expect(r.raw).toHaveLength(1);
    expect(r.calibrated).toEqual([{ mean_pred: 0.5, observed: 0.52, count: 40 }]);
    expect(r.info).toEqual({ method: "isotonic", brier_raw: 0.25 });
  });
  it("reads the backtest: one table per horizon, a row per policy, the triggered policy's events", () => {
    const bt = {
      model_version: "3",
      run_id: "r",
      reports: {
        backtest: {
          run_id: "b",
          artifacts: {
            "backtest.summary": {
              settings: { fee_bps: 10 },
              headline: {
                "1": {
                  never: { accuracy: 0.51, acc_low: 0.5, acc_high: 0.52, p_value: 0.3, ece: 0.01 },
                  triggered: { accuracy: 0.52, acc_low: 0.51, acc_high: 0.53, p_value: 0.02 },
                },
                "24": { weekly: { accuracy: 0.53, best_baseline: "reversal" } },
              },
              horizons: {
                "1": {
                  replay_from: "2020-07-01T00:00:00+00:00",
                  replay_to: "2025-05-31T23:00:00+00:00",
                  event_counts: { promotion: 4, rollback: 1, triggers: { schedule: 9 } },
                },
              },
            },
            "backtest.backtest_md": "# not a table",
            "backtest.backtest": { headline: { "1": { never: { accuracy: 0.1 } } } },
          },
        },
      },
    } as unknown as Report;
    const v = backtest(bt);
    expect(v.tables.map((t) => t.name)).toEqual(["backtest 1h", "backtest 24h"]);
    expect(v.tables[0].rows.map((r) => r.policy)).toEqual(["never", "triggered"]);
    expect(v.tables[0].columns).toEqual([
      "policy",
      "accuracy",
      "acc_low",
      "acc_high",
      "p_value",
      "ece",
    ]);
    expect(v.events).toEqual([
      { horizon: "1", counts: { promotion: 4, rollback: 1, triggers: { schedule: 9 } } },
    ]);
    expect(v.window).toBe("2020-07-01 to 2025-05-31");
    expect(v.feeBps).toBe(10);
  });
  it("returns nothing for an empty report rather than guessing", () => {
    const empty = { model_version: null, run_id: null, reports: {} } as Report;
    expect(backtest(empty).tables).toEqual([]);
    expect(ablationTables(empty)).toEqual([]);
    expect(importance(empty)).toEqual([]);
    expect(foldTable({ loaded: false } as ModelInfo)).toBeNull();
  });
});

describe("system clock and job staleness", () => {
  it("reads a cron expression's longest gap between slots", () => {
    expect(cronPeriodS("*/15 * * * *")).toBe(900);
    expect(cronPeriodS("5 * * * *")).toBe(3600);
    expect(cronPeriodS("0,10,30 * * * *")).toBe(1800);
    expect(cronPeriodS("0 3 * * *")).toBe(86400);
    expect(cronPeriodS("0 */6 * * *")).toBe(6 * 3600);
    expect(cronPeriodS("0 9-17 * * *")).toBe(16 * 3600);
    expect(cronPeriodS("0 3 * * 0")).toBe(7 * 86400);
    expect(cronPeriodS("0 3 * * 7")).toBe(7 * 86400);
    expect(cronPeriodS("0 3 * * 1-5")).toBe(3 * 86400);
    expect(cronPeriodS("0 0 1 * *")).toBe(31 * 86400);
    expect(cronPeriodS("@daily")).toBe(86400);
    expect(cronPeriodS("0 3 * * mon")).toBeNull();
    expect(cronPeriodS("0 0 3 * * *")).toBeNull();
    expect(cronPeriodS("61 * * * *")).toBeNull();
  });

  it("warns past the period plus the run's time (× the clock's speed, at most a period)", () => {
    expect(jobWarnS({ cron: "*/15 * * * *", timeout_s: 600 })).toBe(1500);
    expect(jobWarnS({ cron: "*/15 * * * *", timeout_s: 600 }, 120)).toBe(1800);
    expect(jobWarnS({ cron: "0 3 * * 0", timeout_s: 7200 })).toBe(7 * 86400 + 7200);
    expect(jobWarnS({ cron: "5 * * * *", timeout_s: null })).toBe(7200);
    expect(jobWarnS({ cron: "0 3 * * mon", timeout_s: 60 })).toBe(FRESH_WARN_S);
    expect(staleLevel(1500, 1500)).toBe("ok");
    expect(staleLevel(1501, 1500)).toBe("warn");
    expect(staleLevel(3001, 1500)).toBe("bad");
    expect(staleLevel(null, 1500)).toBe("idle");
  });

  it("extrapolates the server's clock from one reading", () => {
    const r = { checkedAt: "2021-06-01T12:00:00Z", speed: 120, fetchedAt: 1_000_000 };
    expect(new Date(clockNow(r, 1_010_000)).toISOString()).toBe("2021-06-01T12:20:00.000Z");
    expect(clockElapsedS(r, 1_000_500)).toBe(60);
    // a tick of the browser's clock from before the answer arrived does not run it backwards
    expect(clockNow(r, 999_000)).toBe(Date.parse("2021-06-01T12:00:00Z"));
    expect(speedLabel(120)).toBe("120×");
    expect(speedLabel(0.5)).toBe("0.5×");
  });
});

describe("grafanaLinks", () => {
  it("builds base/d/uid for the four dashboards, in order", () => {
    const links = grafanaLinks({
      links: { grafana: "http://127.0.0.1:3000" },
      grafana_dashboards: {
        model: "m-uid",
        serving: "s-uid",
        data: "d-uid",
        pipeline: "p-uid",
      },
    });
    expect(links.map((l) => [l.label, l.href])).toEqual([
      ["Model performance", "http://127.0.0.1:3000/d/m-uid"],
      ["Serving", "http://127.0.0.1:3000/d/s-uid"],
      ["Data and drift", "http://127.0.0.1:3000/d/d-uid"],
      ["Pipeline", "http://127.0.0.1:3000/d/p-uid"],
    ]);
  });
  it("falls back to the provisioned uids, drops trailing slashes and escapes the uid", () => {
    expect(
      grafanaLinks({ links: { grafana: "https://g.example/grafana/" } }).map((l) => l.href),
    ).toEqual([
      "https://g.example/grafana/d/rayapp-model",
      "https://g.example/grafana/d/rayapp-serving",
      "https://g.example/grafana/d/rayapp-data",
      "https://g.example/grafana/d/rayapp-pipeline",
    ]);
    const some = grafanaLinks({
      links: { grafana: "http://g" },
      grafana_dashboards: { data: "a b", pipeline: " " },
    });
    expect(some.map((l) => l.uid)).toEqual([
      "rayapp-model",
      "rayapp-serving",
      "a b",
      "rayapp-pipeline",
    ]);
    expect(some[2].href).toBe("http://g/d/a%20b");
  });
  it("gives no links without a Grafana base URL", () => {
    expect(grafanaLinks(null)).toEqual([]);
    expect(grafanaLinks({})).toEqual([]);
    expect(
      grafanaLinks({ links: { mlflow: "http://m" }, grafana_dashboards: { model: "x" } }),
    ).toEqual([]);
    expect(grafanaLinks({ links: { grafana: "  " } })).toEqual([]);
  });
});

describe("alerts", () => {
  it("summarises the firing counts by their most severe alert", () => {
    expect(alertSummary({ high: 0, medium: 2, info: 1 })).toEqual({ total: 3, severity: "medium" });
    expect(alertSummary({ high: 1, medium: 0, info: 4 })).toEqual({ total: 5, severity: "high" });
    expect(alertSummary({ high: 0, medium: 0, info: 0 })).toEqual({ total: 0, severity: null });
    expect(alertSummary(undefined)).toEqual({ total: 0, severity: null });
    expect(alertBadgeLabel(3, "high")).toBe("3 active alerts, most severe: high");
    expect(alertBadgeLabel(1, "info")).toBe("1 active alert, most severe: info");
  });
  it("keeps the resolved ones, newest resolution first, up to n", () => {
    const at = (h: number) => `2026-01-01T${String(h).padStart(2, "0")}:00:00Z`;
    const recent = [
      alert({ fingerprint: "f", status: "firing" }),
      alert({ fingerprint: "a", status: "resolved", ends_at: at(3) }),
      alert({ fingerprint: "b", status: "resolved", ends_at: at(9) }),
      // no end time: when the feed heard of it
      alert({ fingerprint: "c", status: "resolved", ends_at: null, received_at: at(5) }),
    ];
    expect(recentlyResolved(recent).map((a) => a.fingerprint)).toEqual(["b", "c", "a"]);
    expect(recentlyResolved(recent, 1).map((a) => a.fingerprint)).toEqual(["b"]);
    expect(isWebUrl("https://wiki/x")).toBe(true);
    expect(isWebUrl("docs/OPERATIONS.md#x")).toBe(false);
    expect(isWebUrl(null)).toBe(false);
  });
});
