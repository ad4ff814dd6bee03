// A local HTTP server standing in for the serving API in component tests: each route answers
// what the test sets, and every request is recorded (method, path, headers, body).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Pipeline, PipelineJob, PipelineRun } from "../src/api/types";

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
