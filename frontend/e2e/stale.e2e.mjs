// End-to-end: stale data never passes for live in the browser.
//
// Driven by tests/e2e/test_dashboard.py against the app serving a symbol whose newest forecast
// comes from data years old: every page shows the stale-data banner, the live feed marks the
// forecast, the health card says there is no live data. One JSON event per line on stdout.
//
// Env: BASE_URL (the app), SYMBOL (the stale one), OUT_DIR (screenshots), TIMEOUT_MS.
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { launch } from "./browser.mjs";

const BASE = process.env.BASE_URL;
const SYMBOL = process.env.SYMBOL;
const OUT = process.env.OUT_DIR || "e2e-artifacts";
const T = Number(process.env.TIMEOUT_MS || 60000);
if (!BASE || !SYMBOL) {
  console.error("BASE_URL and SYMBOL are required");
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });
const emit = (event, extra = {}) => console.log(JSON.stringify({ event, ...extra }));
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const { ctx, close } = await launch();
try {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // 1. Dashboard: the banner, and the replayed forecast in the feed marked stale.
  await page.goto(`${BASE}/?symbol=${SYMBOL}`, { waitUntil: "domcontentloaded" });
  const banner = page.getByTestId("stale-banner");
  await banner.waitFor({ timeout: T });
  const item = page.locator('[data-testid="feed-item"]').first();
  await item.waitFor({ timeout: T });
  const mark = item.getByTestId("stale-mark");
  await mark.waitFor({ timeout: T });
  const health = page.getByTestId("health-list");
  await health.getByText("No live data").waitFor({ timeout: T });
  // evaluated, not an inline <script>: the app's CSP refuses inline scripts, as it should
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run('[data-testid="stale-banner"]', {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] },
    });
    return r.violations.map((v) => v.id);
  });
  await page.screenshot({ path: join(OUT, "stale-dashboard.png"), fullPage: true });
  emit("dashboard", {
    banner: (await banner.textContent())?.trim(),
    role: await banner.getAttribute("role"),
    feed_stale: await item.getAttribute("data-stale"),
    feed_ts: await item.getAttribute("data-ts"),
    mark: (await mark.textContent())?.trim(),
    mark_title: await mark.getAttribute("title"),
    a11y: violations,
  });

  // 2. Every other page shows it too (client-side navigation, as the router does it: the app
  // serves the bundle at / only, so deep links are not files).
  const pages = {};
  for (const path of ["predict", "analytics", "system"]) {
    await page.evaluate((to) => {
      window.history.pushState({}, "", to);
      window.dispatchEvent(new PopStateEvent("popstate"));
    }, `/${path}?symbol=${SYMBOL}`);
    await page.waitForURL(`**/${path}?symbol=${SYMBOL}`, { timeout: T });
    await banner.waitFor({ timeout: T });
    pages[path] = (await banner.textContent())?.trim();
  }
  await page.screenshot({ path: join(OUT, "stale-system.png"), fullPage: true });
  emit("pages", { banners: pages });
  if (errors.length) throw new Error(`page errors: ${errors.join(" | ")}`);
  emit("done", { screenshots: OUT });
} catch (e) {
  emit("error", { message: String(e?.message ?? e) });
  process.exitCode = 1;
} finally {
  await close();
}
