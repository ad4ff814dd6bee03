// End-to-end: the built dashboard served by a real `rayapp` Serve app, in headless Chromium.
//
// Driven by tests/e2e/test_dashboard.py, which deploys the app (trained model, stores, feature
// watch) and reads this script's stdout: one JSON event per line. When the dashboard's socket is
// open it prints {"event":"ws-open", "newest_ts": ...}; the test then lands a newer feature vector
// and this script waits for the prediction it causes to arrive over /ws/predictions.
//
// Env: BASE_URL (the app), API_KEY (for POST /predict), OUT_DIR (screenshots), TIMEOUT_MS.
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { launch } from "./browser.mjs";

const BASE = process.env.BASE_URL;
const KEY = process.env.API_KEY;
const OUT = process.env.OUT_DIR || "e2e-artifacts";
const T = Number(process.env.TIMEOUT_MS || 60000);
if (!BASE || !KEY) {
  console.error("BASE_URL and API_KEY are required");
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });
const emit = (event, extra = {}) => console.log(JSON.stringify({ event, ...extra }));
const fail = (msg) => {
  throw new Error(msg);
};

// axe-core WCAG 2 A/AA checks (labels, names, contrast) on each page in the theme shown.
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const a11yFailures = [];
async function a11y(page, name) {
  // the page itself must not scroll sideways (wide tables scroll inside their own box)
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - window.innerWidth,
  );
  if (overflow > 1)
    a11yFailures.push({ page: name, violations: [`page scrolls sideways by ${overflow}px`] });
  // evaluated, not an inline <script>: the app's CSP refuses inline scripts, as it should
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    }));
  });
  emit("a11y", { page: name, violations: violations.map((v) => v.id) });
  if (violations.length) a11yFailures.push({ page: name, violations });
}

const { ctx, close } = await launch();
const consoleErrors = [];
try {
  const page = await ctx.newPage();
  // Failed requests are checked by URL (the console's "Failed to load resource" has none).
  const badResponses = [];
  page.on("response", (r) => {
    if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url()}`);
  });
  page.on(
    "console",
    (m) =>
      m.type() === "error" &&
      !m.text().startsWith("Failed to load resource") &&
      consoleErrors.push(m.text()),
  );
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // 1. Dashboard: the socket opens and the latest logged forecast is replayed to us.
  await page.goto(`${BASE}/`, { waitUntil: "domcontentloaded" });
  await page.getByRole("heading", { name: "Live predictions" }).waitFor({ timeout: T });
  await page.locator('[data-testid="ws-state"][data-status="open"]').waitFor({ timeout: T });
  // the server replays the latest logged forecast to a new socket
  await page
    .locator('[data-testid="feed-item"][data-source="live"]')
    .first()
    .waitFor({ timeout: T });
  const newest = await page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="feed-item"]')]
      .map((e) => e.getAttribute("data-ts") || "")
      .sort()
      .pop(),
  );
  await page
    .locator('[data-testid="model-version"]')
    .filter({ hasText: " v" })
    .waitFor({ timeout: T });
  emit("ws-open", { newest_ts: newest });

  // 2. The test lands a newer feature vector; its forecast must arrive over the WebSocket.
  // data-source="live" marks items received over the socket (history rows are "history")
  const fresh = page.locator('[data-testid="feed-item"][data-source="live"]').first();
  await page.waitForFunction(
    (prev) => {
      const el = document.querySelector('[data-testid="feed-item"][data-source="live"]');
      return el && el.getAttribute("data-ts") && el.getAttribute("data-ts") > (prev || "");
    },
    newest,
    { timeout: T },
  );
  const arrived = await fresh.getAttribute("data-ts");
  const count = await page.locator('[data-testid="feed-item"]').count();
  emit("ws-prediction", { ts: arrived, items: count });
  await page.locator('[data-testid="price-chart"]').waitFor({ timeout: T });
  await page.getByTestId("track-accuracy").waitFor({ timeout: T });
  // The fan chart (50/80/90 % price bands at each forecast's target hour) and the track record's
  // live coverage per level, for the test to check against the forecasts it logged.
  // (a running server may serve a legacy model, or have nothing resolved yet: either is shown)
  await page
    .locator(".fan-90 .recharts-area-area, .legacy-band .recharts-area-area")
    .first()
    .waitFor({ timeout: T });
  await page
    .locator('[data-testid="coverage-row"], [data-testid="coverage-empty"]')
    .first()
    .waitFor({ timeout: T });
  const fan = await page.getByTestId("price-chart").evaluate((el) => ({
    fans: Number(el.getAttribute("data-fans")),
    legacy: Number(el.getAttribute("data-legacy-bands")),
    legend: [...el.querySelectorAll(".recharts-legend-item-text")].map((e) => e.textContent),
    areas: [50, 80, 90].map((l) => el.querySelectorAll(`.fan-${l} .recharts-area-area`).length),
  }));
  const coverage = await page
    .locator('[data-testid="coverage-row"]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute("aria-label")));
  emit("fan", { ...fan, coverage });
  await page.screenshot({ path: join(OUT, "dashboard-light.png"), fullPage: true });
  await a11y(page, "dashboard (light)");

  // Pause and resume (the button and its pressed state).
  await page.getByTestId("feed-pause").click();
  await page.locator('[data-testid="feed-pause"][aria-pressed="true"]').waitFor({ timeout: T });
  await page.getByTestId("feed-pause").click();
  await page.locator('[data-testid="feed-pause"][aria-pressed="false"]').waitFor({ timeout: T });

  // 3. Theme: switch, then reload and check it was remembered.
  const before = await page.evaluate(() => document.documentElement.classList.contains("dark"));
  await page.getByTestId("theme-toggle").click();
  const after = await page.evaluate(() => document.documentElement.classList.contains("dark"));
  if (after === before) fail("theme toggle did not change the theme");
  await page.reload({ waitUntil: "domcontentloaded" });
  await page.locator('[data-testid="feed-item"]').first().waitFor({ timeout: T });
  const remembered = await page.evaluate(() => document.documentElement.classList.contains("dark"));
  if (remembered !== after) fail("theme was not remembered across a reload");
  emit("theme", { dark: after, remembered });
  await page.locator('[data-testid="price-chart"]').waitFor({ timeout: T });
  await page.getByTestId("track-accuracy").waitFor({ timeout: T });
  await page.screenshot({
    path: join(OUT, `dashboard-${after ? "dark" : "light2"}.png`),
    fullPage: true,
  });
  await a11y(page, `dashboard (${after ? "dark" : "light"})`);

  // 4. Predict: invalid input is flagged at once; a valid submit shows P(up) and the explanation.
  await page.keyboard.press("2");
  await page.getByTestId("predict-form").waitFor({ timeout: T });
  await page.getByLabel("Symbol", { exact: true }).fill("b!");
  await page.locator("#symbol-err").filter({ hasText: "2–20" }).waitFor({ timeout: T });
  await page.getByLabel("Symbol", { exact: true }).fill("BTCUSDT");
  await page.getByLabel("API key (X-API-Key)").fill(KEY);
  await page.getByTestId("predict-submit").click();
  await page.getByTestId("explanation-text").waitFor({ timeout: T });
  const text = (await page.getByTestId("explanation-text").textContent())?.trim();
  const pup = (await page.getByTestId("result-pup").textContent())?.trim();
  if (!text) fail("empty explanation");
  await page.getByTestId("shap-chart").waitFor({ timeout: T });
  emit("predict", { explanation: text, p_up: pup });
  await page.screenshot({ path: join(OUT, "predict.png"), fullPage: true });
  await a11y(page, "predict");

  // 5. The other pages render from the live API (screenshots for a human look).
  await page.keyboard.press("3");
  await page
    .getByText(/evaluation/)
    .first()
    .waitFor({ timeout: T });
  await page.getByText("Walk-forward folds", { exact: false }).waitFor({ timeout: T });
  await page.screenshot({ path: join(OUT, "analytics.png"), fullPage: true });
  await a11y(page, "analytics");
  await page.keyboard.press("4");
  await page.getByTestId("components").waitFor({ timeout: T });
  await page.getByText("Predictions served:").waitFor({ timeout: T });
  // The Pipeline card: one row per job when a scheduler has run against this backend, else the
  // empty state naming `rayapp run` (the e2e backend may run no scheduler); one of the two.
  const pipeCard = page.getByRole("region", { name: "Pipeline", exact: true });
  const jobRows = page.locator('[data-testid="pipeline"] [data-testid="pipeline-job"]');
  const pipeEmpty = page.getByTestId("pipeline-empty");
  try {
    await jobRows.first().or(pipeEmpty).first().waitFor({ timeout: T });
  } catch {
    fail(`pipeline: neither job rows nor the empty state: ${await pipeCard.textContent()}`);
  }
  const jobs = await jobRows.count();
  if (jobs > 0) {
    const sched = await page.getByTestId("pipeline-scheduler").textContent();
    if (!sched?.includes("Scheduler")) fail(`pipeline: no scheduler row (${sched})`);
  } else {
    const text = (await pipeEmpty.textContent()) ?? "";
    if (!text.includes("No scheduler has run yet")) fail(`pipeline: empty state reads "${text}"`);
  }
  emit("pipeline", { jobs, empty: jobs === 0 });
  await page.screenshot({ path: join(OUT, "system.png"), fullPage: true });
  await a11y(page, "system");

  // 6. Phone width: the dashboard still lays out (no horizontal scroll of the page).
  await page.setViewportSize({ width: 390, height: 844 });
  await page.keyboard.press("1");
  await page.locator('[data-testid="feed-item"]').first().waitFor({ timeout: T });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - window.innerWidth,
  );
  await page.screenshot({ path: join(OUT, "dashboard-phone.png"), fullPage: true });
  if (overflow > 1) fail(`page scrolls sideways at phone width (${overflow}px)`);
  emit("phone", { overflow });

  // 7. Interaction on the Dashboard: range presets, zoom and pan, the forecast filter, and the
  // live-panel pause and refresh rate (the setting is remembered).
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByTestId("range-24h").click();
  await page.locator('[data-testid="range-24h"][aria-pressed="true"]').waitFor({ timeout: T });
  await page.getByTestId("zoom-in").click();
  await page.getByTestId("pan-back").click();
  await page.locator('[data-testid="zoom-reset"]:not([disabled])').waitFor({ timeout: T });
  const chartLabel = await page.getByTestId("price-chart").getAttribute("aria-label");
  await page.getByTestId("zoom-reset").click();
  await page.getByTestId("range-7d").click();
  await page.getByTestId("filter-direction").selectOption("down");
  const filtered = (await page.getByTestId("filter-count").textContent())?.trim();
  await page.getByTestId("filter-direction").selectOption("all");
  await page.getByTestId("refresh-rate").selectOption("5000");
  await page.getByTestId("live-pause").click();
  await page.locator('[data-testid="live-pause"][aria-pressed="true"]').waitFor({ timeout: T });
  await page.getByTestId("live-pause").click();
  const rate = await page.evaluate(() => localStorage.getItem("rayapp.refresh"));
  emit("interaction", { chart: chartLabel, filtered, rate });

  // 8. Every page by its own URL (a deep link), then a reload, in both themes: the SPA fallback
  // answers index.html, the page renders from the live API, axe finds nothing, a screenshot.
  const PAGES = [
    { name: "dashboard", path: "/", ready: '[data-testid="latest-pup"]' },
    { name: "predict", path: "/predict", ready: '[data-testid="predict-form"]' },
    { name: "analytics", path: "/analytics", ready: "text=Walk-forward folds" },
    { name: "system", path: "/system", ready: '[data-testid="components"]' },
    { name: "models", path: "/models", ready: '[data-testid="model-version-row"]' },
  ];
  const deep = {};
  for (const dark of [false, true]) {
    await page.evaluate((d) => localStorage.setItem("rayapp.theme", d ? "dark" : "light"), dark);
    const theme = dark ? "dark" : "light";
    for (const pg of PAGES) {
      const res = await page.goto(`${BASE}${pg.path}`, { waitUntil: "domcontentloaded" });
      await page.locator(pg.ready).first().waitFor({ timeout: T });
      const again = await page.reload({ waitUntil: "domcontentloaded" });
      await page.locator(pg.ready).first().waitFor({ timeout: T });
      if (pg.name === "system") {
        await page
          .locator('[data-testid="system-channel"] [data-level="ok"]')
          .waitFor({ timeout: T });
        await page
          .getByTestId("drift-empty")
          .or(page.getByTestId("drift-chart"))
          .first()
          .waitFor({ timeout: T });
      }
      if (pg.name === "models") await page.getByTestId("timeline").waitFor({ timeout: T });
      const isDark = await page.evaluate(() => document.documentElement.classList.contains("dark"));
      if (isDark !== dark) fail(`${pg.path}: theme ${theme} not applied`);
      deep[`${pg.name}-${theme}`] = {
        status: res?.status(),
        reload: again?.status(),
        type: res?.headers()["content-type"],
        url: new URL(page.url()).pathname,
      };
      await page.screenshot({ path: join(OUT, `page-${pg.name}-${theme}.png`), fullPage: true });
      await a11y(page, `${pg.name} (${theme})`);
    }
  }
  const roles = await page
    .locator('[data-testid="model-version-row"]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-role")));
  // an unknown API path stays the API's JSON 404 (no index.html)
  const unknown = await page.request.get(`${BASE}/predictions/no/such`, {
    headers: { Accept: "text/html" },
  });
  emit("deep-links", {
    pages: deep,
    model_roles: roles,
    unknown_api: { status: unknown.status(), body: await unknown.json().catch(() => null) },
  });

  if (consoleErrors.length) fail(`console errors: ${consoleErrors.join(" | ")}`);
  if (badResponses.length) fail(`failed requests: ${badResponses.join(" | ")}`);
  if (a11yFailures.length) fail(`accessibility (axe, WCAG 2 AA): ${JSON.stringify(a11yFailures)}`);
  emit("done", { screenshots: OUT });
} catch (e) {
  emit("error", { message: String(e?.message ?? e), console: consoleErrors.slice(-5) });
  process.exitCode = 1;
} finally {
  await close();
}
