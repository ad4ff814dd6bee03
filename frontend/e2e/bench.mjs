// Browser half of benchmarks/frontend.py: load the dashboard RUNS times (fresh profile each, so
// nothing is cached) against BASE_URL and print one JSON line with per-run timings:
//  - first_render_ms: navigation start -> the latest-forecast card shows a P(up) (first
//    meaningful render: data from the API on screen)
//  - ws_first_message_ms: navigation start -> first message on /ws/predictions
//  - js: every JS file the page fetched for "/" (name and bytes), for the initial-bundle size
//  - baseline_ws_ms: a bare WebSocket to the same endpoint from a blank page (server cost alone)
import { launch } from "./browser.mjs";

const BASE = process.env.BASE_URL;
const RUNS = Number(process.env.RUNS || 5);
const T = 60000;

const INIT = `(() => {
  const Native = window.WebSocket;
  window.__ws = [];
  window.WebSocket = class extends Native {
    constructor(...a) {
      super(...a);
      const rec = { url: String(a[0]), created: performance.now(), first: null };
      window.__ws.push(rec);
      this.addEventListener("message", () => { if (rec.first === null) rec.first = performance.now(); });
    }
  };
})();`;

const runs = [];
for (let i = 0; i < RUNS; i++) {
  const { ctx, close } = await launch();
  try {
    await ctx.addInitScript(INIT);
    const page = await ctx.newPage();
    const js = new Map();
    page.on("response", async (r) => {
      const u = new URL(r.url());
      if (u.pathname.endsWith(".js"))
        js.set(u.pathname, Number((await r.headerValue("content-length")) ?? 0));
    });
    await page.goto(`${BASE}/`, { waitUntil: "commit" });
    await page.locator('[data-testid="latest-pup"]').waitFor({ timeout: T });
    const render = await page.evaluate(() => performance.now());
    // where the time to first render went: the document, then each request that ended before it
    const path = await page.evaluate((renderedAt) => {
      const nav = performance.getEntriesByType("navigation")[0];
      const out = {
        document: { start: 0, end: Math.round(nav.responseEnd) },
        dom_interactive: Math.round(nav.domInteractive),
      };
      for (const e of performance.getEntriesByType("resource")) {
        if (e.responseEnd > renderedAt) continue;
        const u = new URL(e.name);
        out[u.pathname] = { start: Math.round(e.startTime), end: Math.round(e.responseEnd) };
      }
      return out;
    }, render);
    await page.waitForFunction(
      () => window.__ws.some((w) => w.url.includes("/ws/predictions") && w.first !== null),
      null,
      { timeout: T },
    );
    const ws = await page.evaluate(
      () => window.__ws.find((w) => w.url.includes("/ws/predictions")).first,
    );
    await page.waitForLoadState("networkidle").catch(() => {});
    // baseline: the same socket opened by a page with no app
    await page.goto(`${BASE}/config.json`);
    const base = await page.evaluate(
      (u) =>
        new Promise((res, rej) => {
          const t0 = performance.now();
          const s = new WebSocket(u);
          s.onmessage = () => {
            res(performance.now() - t0);
            s.close();
          };
          s.onerror = () => rej(new Error("baseline socket failed"));
        }),
      `${BASE.replace(/^http/, "ws")}/ws/predictions`,
    );
    runs.push({
      first_render_ms: render,
      ws_first_message_ms: ws,
      baseline_ws_ms: base,
      critical_path: path,
      js: [...js.keys()],
    });
  } finally {
    await close();
  }
}
console.log(JSON.stringify({ runs }));
