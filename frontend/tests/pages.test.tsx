// Pages against a local HTTP server standing in for the API (tests/apiServer.ts).
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setApiBase } from "../src/api/client";
import { shouldRetry } from "../src/api/queries";
import { ApiBanner } from "../src/components/ApiBanner";
import { applyTheme, THEME_KEY } from "../src/hooks/useTheme";
import Predict from "../src/pages/Predict";
import App from "../src/App";
import {
  alert,
  alertFeed,
  type ApiServer,
  pipeline,
  pipelineJob,
  pipelineRun,
  sampleAlerts,
  startApi,
} from "./apiServer";
import { wrap } from "./harness";
import { prediction } from "./wsServer";

let api: ApiServer;
beforeEach(async () => {
  api = await startApi();
  setApiBase(api.url);
  sessionStorage.clear();
});
afterEach(async () => {
  await api.close();
});

const NAMES = ["rsi", "sma_20"];
const explained = {
  ...prediction("2026-01-01T10:00:00+00:00", 0.64),
  explanation: {
    method: "pred_contribs",
    model_version: "3",
    units: "log-odds",
    base_value: 0.01,
    margin: 0.58,
    contributions: { rsi: 0.42, sma_20: -0.12 },
    top_positive: [],
    top_negative: [],
    text: "Up 64%: driven by rsi (+0.42), against sma_20 (−0.12).",
  },
};

function serveModel() {
  api.route("GET", "/model", () => ({
    body: { loaded: true, name: "m", version: "3", feature_names: NAMES, swaps: 0 },
  }));
  api.route("GET", "/predictions/latest", () => ({
    body: { ...explained, features: { rsi: 31.5, sma_20: null } },
  }));
}

describe("Predict", () => {
  it("flags invalid input as it is typed and sends nothing until it is fixed", async () => {
    serveModel();
    const user = userEvent.setup();
    wrap(<Predict />);
    const sym = screen.getByLabelText("Symbol", { exact: true });
    await user.clear(sym);
    await user.type(sym, "b!");
    expect(screen.getByText(/2–20 upper-case/)).toBeInTheDocument();
    expect(sym).toHaveAttribute("aria-invalid", "true");
    await user.click(screen.getByTestId("predict-submit"));
    expect(screen.getByText(/API key is required/)).toBeInTheDocument();
    expect(api.requests.filter((r) => r.path === "/predict")).toHaveLength(0);
  });

  it("says nothing about fields before a submit, then names and highlights the ones to fix", async () => {
    serveModel();
    const user = userEvent.setup();
    wrap(<Predict />);
    await screen.findByTestId("predict-form");
    // nothing was submitted: no "fix the fields" summary, and no field marked
    expect(screen.queryByText(/Fix the highlighted fields/)).not.toBeInTheDocument();
    const key = screen.getByLabelText("API key (X-API-Key)");
    expect(key).toHaveAttribute("aria-invalid", "false");
    await user.click(screen.getByTestId("predict-submit"));
    expect(screen.getByRole("alert")).toHaveTextContent("Fix the highlighted fields: API key.");
    expect(key).toHaveAttribute("aria-invalid", "true");
    expect(api.requests.filter((r) => r.path === "/predict")).toHaveLength(0);
    await user.type(key, "k");
    expect(screen.queryByText(/Fix the highlighted fields/)).not.toBeInTheDocument();
  });

  it("submits a symbol with the API key and shows P(up), interval and the explanation", async () => {
    serveModel();
    api.route("POST", "/predict", (r) =>
      r.headers["x-api-key"] === "k-123"
        ? { body: explained }
        : { status: 401, body: { detail: "missing or invalid X-API-Key header" } },
    );
    const user = userEvent.setup();
    wrap(<Predict />);
    await user.type(screen.getByLabelText("API key (X-API-Key)"), "k-123");
    await user.click(screen.getByTestId("predict-submit"));
    expect(await screen.findByTestId("explanation-text")).toHaveTextContent("driven by rsi");
    expect(screen.getByTestId("result-pup")).toHaveTextContent("64.0%");
    expect(screen.getByTestId("shap-chart")).toHaveAttribute(
      "aria-label",
      expect.stringContaining("rsi +0.420"),
    );
    const sent = api.requests.find((r) => r.path === "/predict")!;
    expect(sent.body).toEqual({ symbol: "BTCUSDT", explain: true });
    expect(sessionStorage.getItem("rayapp.apiKey")).toBe("k-123");
  });

  it("shows the server's refusal (wrong key) as an error", async () => {
    serveModel();
    api.route("POST", "/predict", () => ({
      status: 401,
      body: { detail: "missing or invalid X-API-Key header" },
    }));
    const user = userEvent.setup();
    wrap(<Predict />);
    await user.type(screen.getByLabelText("API key (X-API-Key)"), "wrong");
    await user.click(screen.getByTestId("predict-submit"));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "HTTP 401: missing or invalid X-API-Key header",
    );
  });

  it("sends an explicit vector (empty = null) and shows the API's 422 beside the field", async () => {
    serveModel();
    api.route("POST", "/predict", () => ({
      status: 422,
      body: {
        detail: [
          {
            type: "value_error",
            loc: ["body", "features", "rsi"],
            msg: "out of the training range",
            input: 500,
          },
        ],
      },
    }));
    const user = userEvent.setup();
    wrap(<Predict />);
    await user.click(screen.getByLabelText("Explicit feature vector"));
    const rsi = await screen.findByLabelText("rsi");
    await user.type(rsi, "abc");
    expect(screen.getByText("Not a number.")).toBeInTheDocument();
    await user.clear(rsi);
    await user.type(rsi, "500");
    await user.type(screen.getByLabelText("API key (X-API-Key)"), "k");
    await user.click(screen.getByTestId("predict-submit"));
    expect(await screen.findByText("out of the training range")).toBeInTheDocument();
    expect(api.requests.find((r) => r.path === "/predict")!.body).toEqual({
      symbol: "BTCUSDT",
      explain: true,
      features: { rsi: 500, sma_20: null },
    });
  });

  it("fills the vector from the latest forecast's features", async () => {
    serveModel();
    const user = userEvent.setup();
    wrap(<Predict />);
    await user.click(screen.getByLabelText("Explicit feature vector"));
    const fill = await screen.findByRole("button", { name: /Fill from the latest/ });
    await waitFor(() => expect(fill).toBeEnabled());
    await user.click(fill);
    expect(screen.getByLabelText("rsi")).toHaveValue("31.5");
    expect(screen.getByLabelText("sma_20")).toHaveValue("");
  });
});

describe("API down", () => {
  it("shows a banner while /health fails and clears it when the API is back", async () => {
    await api.close(); // nothing listens: a network error
    wrap(<ApiBanner />);
    expect(await screen.findByTestId("api-down")).toHaveTextContent(/API unreachable/);
    api = await startApi();
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    setApiBase(api.url);
    await userEvent.click(screen.getByRole("button", { name: "Retry now" }));
    await waitFor(() => expect(screen.queryByTestId("api-down")).toBeNull());
  });

  it("retries network and 5xx failures but not 4xx answers", async () => {
    const { ApiError, NetworkError } = await import("../src/api/client");
    expect(shouldRetry(0, new NetworkError("/x", new Error("refused")))).toBe(true);
    expect(shouldRetry(0, new ApiError(503, "down", "/x"))).toBe(true);
    expect(shouldRetry(3, new ApiError(503, "down", "/x"))).toBe(false);
    expect(shouldRetry(0, new ApiError(404, "nope", "/x"))).toBe(false);
  });
});

describe("shell", () => {
  it("toggles and remembers the theme, and navigates with number keys", async () => {
    applyTheme("light");
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    serveModel();
    const user = userEvent.setup();
    wrap(<App />, "/analytics");
    await user.click(screen.getByTestId("theme-toggle"));
    expect(document.documentElement).toHaveClass("dark");
    expect(localStorage.getItem(THEME_KEY)).toBe("dark");
    await user.keyboard("t");
    expect(localStorage.getItem(THEME_KEY)).toBe("light");
    await user.keyboard("2");
    expect(await screen.findByTestId("predict-form")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Predict" })).toHaveAttribute("aria-current", "page");
    await user.keyboard("?");
    expect(screen.getByRole("dialog", { name: "Keyboard shortcuts" })).toBeInTheDocument();
  });
});

describe("alert badge", () => {
  it("shows how many alerts fire, coloured by the most severe, and links to System", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/alerts", () => ({ body: sampleAlerts() }));
    wrap(<App />, "/analytics");
    const badge = await screen.findByTestId("alert-badge");
    expect(badge).toHaveTextContent("3");
    expect(badge).toHaveAccessibleName("3 active alerts, most severe: high");
    expect(badge).toHaveAttribute("data-severity", "high");
    expect(badge).toHaveClass("bg-red-700");
    expect(api.requests.find((r) => r.path === "/alerts")).toBeDefined();
    await userEvent.click(badge);
    expect(await screen.findByTestId("alerts-card")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "System" })).toHaveAttribute("aria-current", "page");
  });

  it("takes the colour of a medium alert when nothing worse fires", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/alerts", () => ({
      body: alertFeed([
        alert({ fingerprint: "m", alertname: "RayappRedisDown", severity: "medium" }),
      ]),
    }));
    wrap(<App />, "/analytics");
    const badge = await screen.findByTestId("alert-badge");
    expect(badge).toHaveAccessibleName("1 active alert, most severe: medium");
    expect(badge).toHaveClass("bg-amber-300");
  });

  it("shows nothing when no alert fires, or when the API has no /alerts", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/alerts", () => ({ body: alertFeed([]) }));
    const first = wrap(<App />, "/system");
    const card = await screen.findByTestId("alerts-card");
    expect(await within(card).findByText("No active alerts")).toBeInTheDocument();
    expect(screen.queryByTestId("alert-badge")).toBeNull();
    first.unmount();

    api.route("GET", "/alerts", () => ({ status: 404, body: { detail: "Not Found" } }));
    wrap(<App />, "/system");
    const card2 = await screen.findByTestId("alerts-card");
    expect(await within(card2).findByRole("alert")).toHaveTextContent(
      "not exposed by this API version (/alerts)",
    );
    expect(screen.queryByTestId("alert-badge")).toBeNull();
  });
});

describe("Analytics", () => {
  it("renders folds, baselines, the ablation with p-values and the empty states from the API", async () => {
    const Analytics = (await import("../src/pages/Analytics")).default;
    api.route("GET", "/model", () => ({
      body: {
        loaded: true,
        version: "7",
        feature_names: [],
        swaps: 0,
        cv_metrics: {
          folds: [{ fold: 0, accuracy: 0.55, acc_low: 0.51, acc_high: 0.59 }],
          pooled: { accuracy: 0.55 },
        },
        baselines: { pooled: { always_up: { accuracy: 0.5 } }, best: "always_up" },
        gate: { promote: false, reasons: ["not better than always_up (p=0.2)"] },
      },
    }));
    api.route("GET", "/report", () => ({
      body: {
        model_version: "7",
        run_id: "r",
        reports: {
          training: { artifacts: {} },
          ablation: {
            artifacts: {
              "ablation.recent": {
                columns: ["config", "accuracy", "p_boot", "significant"],
                data: [["price_only", 0.52, 0.0004, true]],
              },
            },
          },
        },
      },
    }));
    wrap(<Analytics />);
    expect(await screen.findByText("Model v7 evaluation")).toBeInTheDocument();
    expect(screen.getByTestId("gate")).toHaveTextContent(
      "refused – not better than always_up (p=0.2)",
    );
    expect(screen.getByTestId("table-folds")).toHaveTextContent("0.5100");
    expect(screen.getByTestId("table-baselines")).toHaveTextContent("best baseline");
    expect(screen.getByTestId("table-ablation-recent")).toHaveTextContent("<0.001");
    expect(screen.getByText("No calibration report in this training run.")).toBeInTheDocument();
    expect(
      screen.getByRole("button", { name: /Download rayapp-report-v7.csv/ }),
    ).toBeInTheDocument();
  });

  it("shows the API's error with a retry when there is no model", async () => {
    const Analytics = (await import("../src/pages/Analytics")).default;
    api.route("GET", "/model", () => ({
      status: 503,
      body: { detail: "no model loaded: no champion" },
    }));
    api.route("GET", "/report", () => ({
      status: 503,
      body: { detail: "no model loaded: no champion" },
    }));
    wrap(<Analytics />);
    expect(await screen.findByRole("alert")).toHaveTextContent("HTTP 503: no model loaded");
    expect(screen.getByRole("button", { name: "Retry" })).toBeInTheDocument();
  });
});

describe("System", () => {
  type Answer = { status?: number; body: unknown };
  function serveSystem({
    pipe,
    freshness = { status: 404, body: { detail: "Not Found" } },
    latestTs = "2026-01-01T10:00:00+00:00",
  }: {
    pipe: Answer;
    freshness?: Answer;
    latestTs?: string;
  }) {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/ready", () => ({
      body: {
        ready: true,
        model_loaded: true,
        model_version: "3",
        redis: true,
        postgres: true,
        detail: {},
      },
    }));
    api.route("GET", "/model", () => ({
      body: { loaded: true, version: "3", feature_names: [], swaps: 0 },
    }));
    api.route("GET", "/predictions/latest", () => ({ body: prediction(latestTs) }));
    api.route("GET", "/freshness", () => freshness);
    api.route("GET", "/pipeline", () => pipe);
  }
  const rows = (testId: string) =>
    screen.getAllByTestId(testId).map((tr) => ({
      name: within(tr).getByRole("rowheader").textContent,
      level: tr.querySelector("[data-level]")?.getAttribute("data-level"),
      status: tr.querySelector("[data-level]")?.textContent,
      detail: tr.querySelectorAll("td")[1].textContent,
    }));
  const freshRow = (name: string) => {
    const th = within(screen.getByTestId("freshness")).getByRole("rowheader", { name });
    const tr = th.closest("tr")!;
    return {
      level: tr.querySelector("[data-level]")?.getAttribute("data-level"),
      detail: tr.querySelectorAll("td")[1].textContent,
    };
  };

  it("lists the scheduler and each job with its status, colour and next slot", async () => {
    const System = (await import("../src/pages/System")).default;
    const failed = pipelineRun({
      run_id: 13,
      job: "resolve",
      status: "failed",
      attempt: 3,
      max_attempts: 3,
      error: `OperationalError: connection refused ${"x".repeat(300)}`,
    });
    serveSystem({
      pipe: {
        body: pipeline([
          pipelineJob({ last_run: pipelineRun({ run_id: 12 }), last_success_age_s: 300 }),
          // failed: bad although its last success is recent
          pipelineJob({
            job: "resolve",
            cron: "5 * * * *",
            last_run: failed,
            last_success_age_s: 100,
          }),
          pipelineJob({ job: "drift", cron: "10 * * * *", paused: true, next_slot: null }),
          // */15 with a 600 s timeout: warn past 900 + 600 s, bad past twice that
          pipelineJob({ job: "features", last_success_age_s: 2000 }),
          pipelineJob({ job: "stale", last_success_age_s: 3100 }),
          pipelineJob({
            job: "retrain",
            cron: "0 3 * * 0",
            timeout_s: 7200,
            last_run: null,
            last_success: null,
            last_success_age_s: null,
          }),
        ]),
      },
    });
    wrap(<System />);
    await screen.findByTestId("pipeline");
    const [sched] = rows("pipeline-scheduler");
    expect(sched).toMatchObject({ name: "Scheduler", level: "ok", status: "running" });
    expect(sched.detail).toMatch(/^heartbeat \d+s ago · wall clock$/);
    const jobs = rows("pipeline-job");
    expect(jobs.map((j) => [j.name, j.level, j.status])).toEqual([
      ["refresh", "ok", "succeeded"],
      ["resolve", "bad", "failed"],
      ["drift", "idle", "paused"],
      ["features", "warn", "succeeded"],
      ["stale", "bad", "succeeded"],
      ["retrain", "idle", "never run"],
    ]);
    expect(jobs[0].detail).toBe(
      "next 01-01 10:15 UTC · last #12 succeeded (attempt 1/3) · success 5 min ago",
    );
    expect(jobs[1].detail).toMatch(
      /^next 01-01 10:15 UTC · last #13 failed \(attempt 3\/3\) · success 100 s ago/,
    );
    expect(jobs[1].detail).toContain("OperationalError: connection refused xxx");
    expect(jobs[1].detail).toMatch(/x…$/);
    expect(jobs[1].detail!.length).toBeLessThan(300);
    expect(jobs[5].detail).toBe("next 01-01 10:15 UTC · no success yet");
    // the run history is fetched only when asked for
    expect(api.requests.some((r) => r.path === "/pipeline/runs")).toBe(false);
    api.route("GET", "/pipeline/runs", () => ({
      body: { items: [failed, pipelineRun({ run_id: 12 })] },
    }));
    await userEvent.click(screen.getByRole("button", { name: "Show recent runs" }));
    const hist = await screen.findByTestId("pipeline-runs");
    const trs = within(hist).getAllByRole("row").slice(1);
    expect(trs.map((tr) => tr.querySelector("[data-level]")?.getAttribute("data-level"))).toEqual([
      "bad",
      "ok",
    ]);
    expect(trs[1]).toHaveTextContent("#12refresh01-01 10:00 UTCsucceeded1/3120/118/212 s");
    expect(screen.getByRole("button", { name: "Hide recent runs" })).toHaveAttribute(
      "aria-expanded",
      "true",
    );
  });

  it("measures ages on the market clock during a replay, not the browser's", async () => {
    const System = (await import("../src/pages/System")).default;
    const clock = { id: "replay:demo", kind: "market" as const, speed: 120 };
    serveSystem({
      latestTs: "2021-06-01T11:30:00+00:00",
      freshness: {
        body: {
          checked_at: "2021-06-01T12:00:00Z",
          clock,
          items: [
            { source: "binance", dataset: "klines_1h", latest: "2021-06-01T11:50:00Z", age_s: 600 },
            { source: "news", dataset: "articles", latest: "2021-06-01T06:00:00Z", age_s: 21600 },
          ],
        },
      },
      pipe: {
        body: pipeline([pipelineJob({ clock: "replay:demo", last_success_age_s: 400 })], {
          checked_at: "2021-06-01T12:00:00Z",
          clock,
        }),
      },
    });
    wrap(<System />);
    await screen.findByTestId("pipeline");
    // 30 market minutes old (plus at most a second or two × 120 while the test runs)
    await waitFor(() => expect(freshRow("Latest forecast").detail).toMatch(/^3[0-4] min old$/));
    expect(freshRow("Latest forecast").level).toBe("ok");
    expect(freshRow("Latest forecast").detail).not.toMatch(/ d old/);
    expect(freshRow("binance · klines_1h").detail).toMatch(/^1[0-4] min old$/);
    expect(freshRow("binance · klines_1h").level).toBe("ok");
    expect(freshRow("news · articles")).toMatchObject({ level: "bad", detail: "6.0 h old" });
    expect(screen.getByTestId("clock-note")).toHaveTextContent(
      /^Ages in market time \(replay clock, 120×\): now 06-01 12:0\d UTC\.$/,
    );
    const [sched] = rows("pipeline-scheduler");
    expect(sched.detail).toContain("market clock (replay, 120×)");
    expect(rows("pipeline-job")[0]).toMatchObject({ level: "ok", status: "succeeded" });
  });

  it("shows the clock's own wall time, without a market note, when not replaying", async () => {
    const System = (await import("../src/pages/System")).default;
    serveSystem({
      latestTs: "2026-01-01T09:00:00+00:00",
      freshness: {
        body: {
          checked_at: "2026-01-01T10:00:00Z",
          clock: { id: "wall", kind: "wall", speed: 1 },
          items: [],
        },
      },
      pipe: { body: pipeline([]) },
    });
    wrap(<System />);
    await waitFor(() => expect(freshRow("Latest forecast").detail).toBe("60 min old"));
    expect(screen.queryByTestId("clock-note")).toBeNull();
  });

  it("lists active alerts most severe first, with the recently resolved below", async () => {
    const System = (await import("../src/pages/System")).default;
    serveSystem({ pipe: { body: pipeline([]) } });
    api.route("GET", "/alerts", () => ({ body: sampleAlerts() }));
    wrap(<System />);
    const card = await screen.findByTestId("alerts-card");
    expect(card).toBe(screen.getByRole("region", { name: "Alerts" }));
    const items = await within(card).findAllByTestId("alert-row");
    expect(
      items.map((r) => [
        r.getAttribute("data-severity"),
        r.querySelector("[data-severity]")?.textContent,
        r.querySelector(".font-medium")?.textContent,
      ]),
    ).toEqual([
      ["high", "high", "RayappPostgresUnreachable"],
      ["medium", "medium", "RayappSourceStale"],
      ["info", "info", "RayappDriftDetected"],
    ]);
    expect(items[0]).toHaveTextContent(
      "PostgreSQL does not answer: predictions are not logged, the pipeline cannot write",
    );
    expect(items[0]).toHaveTextContent(
      /area infrastructure · started \d\d-\d\d \d\d:\d\d UTC \(12 min ago\)/,
    );
    expect(items[0]).toHaveTextContent("runbook docs/OPERATIONS.md#rayapppostgresunreachable");
    expect(within(items[0]).getByRole("link", { name: "source ↗" })).toHaveAttribute(
      "href",
      expect.stringContaining("http://127.0.0.1:9090/graph"),
    );
    expect(items[1]).toHaveTextContent("klines_1h from binance: newest row is 3h 5m old");
    expect(items[1]).toHaveTextContent("(3.2 h ago)");
    // only the alert Alertmanager stopped repeating is marked stale
    expect(within(items[1]).getByTestId("alert-stale")).toHaveTextContent("stale");
    expect(within(card).getAllByTestId("alert-stale")).toHaveLength(1);
    expect(within(card).getByTestId("alert-counts")).toHaveTextContent(
      "firing: 1 high · 1 medium · 1 info",
    );
    const resolved = within(card).getAllByTestId("alert-resolved");
    expect(resolved.map((r) => r.querySelector(".font-medium")?.textContent)).toEqual([
      "RayappPipelineRunsFailing",
      "RayappRedisDown",
    ]);
    expect(resolved[0]).toHaveTextContent("resolved 20 min ago · lasted 60 min");
  });

  it("says when no alert fires and nothing resolved, and shows a failing feed's error", async () => {
    const System = (await import("../src/pages/System")).default;
    serveSystem({ pipe: { body: pipeline([]) } });
    api.route("GET", "/alerts", () => ({ body: alertFeed([]) }));
    const first = wrap(<System />);
    const card = await screen.findByTestId("alerts-card");
    expect(await within(card).findByText("No active alerts")).toBeInTheDocument();
    expect(within(card).getByText("None recently.")).toBeInTheDocument();
    expect(within(card).queryAllByTestId("alert-row")).toHaveLength(0);
    first.unmount();

    api.route("GET", "/alerts", () => ({
      status: 422,
      body: { detail: [{ loc: ["query", "limit"], msg: "too large", type: "less_than_equal" }] },
    }));
    wrap(<System />);
    const card2 = await screen.findByTestId("alerts-card");
    expect(await within(card2).findByRole("alert")).toHaveTextContent(
      "/alerts: HTTP 422: query.limit: too large",
    );
    api.route("GET", "/alerts", () => ({ body: sampleAlerts() }));
    await userEvent.click(within(card2).getByRole("button", { name: "Retry" }));
    expect(await within(card2).findAllByTestId("alert-row")).toHaveLength(3);
  });

  it("links each Grafana dashboard by uid under the configured base URL", async () => {
    const System = (await import("../src/pages/System")).default;
    serveSystem({ pipe: { body: pipeline([]) } });
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) =>
      String(input).endsWith("config.json")
        ? Promise.resolve(
            new Response(
              JSON.stringify({
                links: { grafana: "http://grafana.local:3000/" },
                grafana_dashboards: { serving: "custom-serving" },
              }),
            ),
          )
        : realFetch(input, init),
    );
    try {
      wrap(<System />);
      const g = await screen.findByTestId("grafana-links");
      expect(
        within(g)
          .getAllByRole("link")
          .map((a) => [a.textContent, a.getAttribute("href")]),
      ).toEqual([
        ["Model performance ↗", "http://grafana.local:3000/d/rayapp-model"],
        ["Serving ↗", "http://grafana.local:3000/d/custom-serving"],
        ["Data and drift ↗", "http://grafana.local:3000/d/rayapp-data"],
        ["Pipeline ↗", "http://grafana.local:3000/d/rayapp-pipeline"],
      ]);
      // no MLflow URL in this config: named, not linked
      const links = screen.getByTestId("links");
      expect(within(links).getByText("MLflow")).not.toHaveAttribute("href");
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("says when no scheduler has run yet", async () => {
    const System = (await import("../src/pages/System")).default;
    serveSystem({
      pipe: { body: pipeline([], { scheduler: { alive: false, heartbeat_at: null } }) },
    });
    wrap(<System />);
    expect(await screen.findByTestId("pipeline-empty")).toHaveTextContent(
      "No scheduler has run yet: rayapp run starts one.",
    );
    expect(screen.queryByTestId("pipeline")).toBeNull();
  });

  it("says when the API has no /pipeline, and shows other errors with a retry", async () => {
    const System = (await import("../src/pages/System")).default;
    serveSystem({ pipe: { status: 404, body: { detail: "Not Found" } } });
    const first = wrap(<System />);
    const card = screen.getByRole("region", { name: "Pipeline" });
    expect(await within(card).findByRole("alert")).toHaveTextContent(
      "not exposed by this API version (/pipeline)",
    );
    expect(within(card).queryByRole("button", { name: "Retry" })).toBeNull();
    first.unmount();

    serveSystem({ pipe: { status: 409, body: { detail: "pipeline tables missing: migrate" } } });
    wrap(<System />);
    const card2 = screen.getByRole("region", { name: "Pipeline" });
    expect(await within(card2).findByRole("alert")).toHaveTextContent(
      "/pipeline: HTTP 409: pipeline tables missing: migrate",
    );
    serveSystem({ pipe: { body: pipeline([pipelineJob()]) } });
    await userEvent.click(within(card2).getByRole("button", { name: "Retry" }));
    expect(await within(card2).findByTestId("pipeline")).toBeInTheDocument();
  });
});
