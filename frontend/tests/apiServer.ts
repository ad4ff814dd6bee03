// A local HTTP server standing in for the serving API in component tests: each route answers
// what the test sets, and every request is recorded (method, path, headers, body).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Alert, Alerts, Pipeline, PipelineJob, PipelineRun } from "../src/api/types";

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: unknown;
}
export type Handler = (
  req: Recorded,
) => { status?: number; body: unknown } | Promise<{ status?: number; body: unknown }>;

export interface ApiServer {
  url: string;
  requests: Recorded[];
  route: (method: string, path: string, h: Handler) => void;
  close: () => Promise<void>;
}

export async function startApi(): Promise<ApiServer> {
  const routes = new Map<string, Handler>();
  const requests: Recorded[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const path = (req.url ?? "/").split("?")[0];
    const rec = {
      method: req.method ?? "GET",
      path,
      headers: req.headers,
      body: text ? JSON.parse(text) : null,
    };
    requests.push(rec);
    const h = routes.get(`${rec.method} ${path}`);
    const out = h ? await h(rec) : { status: 404, body: { detail: "Not Found" } };
    res.writeHead(out.status ?? 200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(out.body));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    route: (m, p, h) => routes.set(`${m} ${p}`, h),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// Fixtures for the scheduler's routes (GET /pipeline, GET /pipeline/runs), shaped like the API's.
export function pipelineRun(over: Partial<PipelineRun> = {}): PipelineRun {
  return {
    run_id: 1,
    job: "refresh",
    clock: "wall",
    slot: "2026-01-01T10:00:00Z",
    trigger: "schedule",
    status: "succeeded",
    attempt: 1,
    max_attempts: 3,
    started_at: "2026-01-01T10:00:01Z",
    finished_at: "2026-01-01T10:00:13Z",
    lateness_ms: 1000,
    retry_at: null,
    rows_read: 120,
    rows_written: 118,
    rows_quarantined: 2,
    stats: {},
    error: null,
    runner: "rayapp-runner-refresh",
    recorded_at: "2026-01-01T10:00:13Z",
    ...over,
  };
}

export function pipelineJob(over: Partial<PipelineJob> = {}): PipelineJob {
  const last = pipelineRun({ job: over.job ?? "refresh" });
  return {
    job: "refresh",
    cron: "*/15 * * * *",
    enabled: true,
    paused: false,
    clock: "wall",
    next_slot: "2026-01-01T10:15:00Z",
    timeout_s: 600,
    heartbeat_at: null,
    last_run: last,
    last_success: last,
    last_success_age_s: 300,
    counts: { succeeded: 1 },
    ...over,
  };
}

export function pipeline(jobs: PipelineJob[], over: Partial<Pipeline> = {}): Pipeline {
  return {
    checked_at: "2026-01-01T10:05:00Z",
    clock: { id: "wall", kind: "wall", speed: 1 },
    scheduler: { alive: true, heartbeat_at: new Date().toISOString() },
    jobs,
    ...over,
  };
}

// Fixtures for the alert feed (GET /alerts), shaped like rayapp/serving/alerts_api.py's answer.
const minutesAgo = (m: number): string => new Date(Date.now() - m * 60000).toISOString();

export function alert(over: Partial<Alert> = {}): Alert {
  const name = over.alertname ?? "RayappPostgresUnreachable";
  const severity = over.severity ?? "high";
  const area = over.area === undefined ? "infrastructure" : over.area;
  const summary =
    over.summary === undefined
      ? "PostgreSQL does not answer: predictions are not logged, the pipeline cannot write"
      : over.summary;
  const runbook =
    over.runbook === undefined ? `docs/OPERATIONS.md#${name.toLowerCase()}` : over.runbook;
  return {
    fingerprint: "5c1b2a9e7d3f4e01",
    alertname: name,
    severity,
    status: "firing",
    summary,
    runbook,
    area,
    labels: { alertname: name, severity, ...(area ? { area } : {}), instance: "serve:8000" },
    annotations: { ...(summary ? { summary } : {}), ...(runbook ? { runbook } : {}) },
    starts_at: minutesAgo(12),
    ends_at: null,
    received_at: minutesAgo(1),
    first_received_at: minutesAgo(11),
    notifications: 3,
    generator_url: "http://127.0.0.1:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
    stale: false,
    ...over,
  };
}

/** A feed: `active` sorted most severe first (as the API does), counts from it. */
export function alertFeed(active: Alert[], recent: Alert[] = []): Alerts {
  const rank = { high: 0, medium: 1, info: 2 } as const;
  const sorted = [...active].sort((a, b) => rank[a.severity] - rank[b.severity]);
  const counts = { high: 0, medium: 0, info: 0 };
  for (const a of active) counts[a.severity] += 1;
  return { active: sorted, recent: [...sorted, ...recent], counts };
}

/** Three firing (high, medium stale, info) and two resolved, like a bad morning. */
export function sampleAlerts(): Alerts {
  return alertFeed(
    [
      alert({
        fingerprint: "a1",
        alertname: "RayappSourceStale",
        severity: "medium",
        area: "data",
        summary: "klines_1h from binance: newest row is 3h 5m old",
        labels: { alertname: "RayappSourceStale", severity: "medium", area: "data" },
        starts_at: minutesAgo(190),
        received_at: minutesAgo(45),
        stale: true,
      }),
      alert({ fingerprint: "a2" }),
      alert({
        fingerprint: "a3",
        alertname: "RayappDriftDetected",
        severity: "info",
        area: "model",
        summary:
          "the drift trigger fired: served features drifted from the champion's training window",
        starts_at: minutesAgo(30),
      }),
    ],
    [
      alert({
        fingerprint: "r1",
        alertname: "RayappRedisDown",
        severity: "medium",
        status: "resolved",
        summary:
          "the online store (Redis) does not answer: feature lookups fall back to PostgreSQL",
        starts_at: minutesAgo(300),
        ends_at: minutesAgo(240),
        received_at: minutesAgo(239),
      }),
      alert({
        fingerprint: "r2",
        alertname: "RayappPipelineRunsFailing",
        severity: "medium",
        area: "pipeline",
        status: "resolved",
        summary: "the last run of job refresh failed",
        starts_at: minutesAgo(80),
        ends_at: minutesAgo(20),
        received_at: minutesAgo(19),
      }),
    ],
  );
}
