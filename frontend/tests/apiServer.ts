// A local HTTP server standing in for the serving API in component tests: each route answers
// what the test sets, and every request is recorded (method, path, headers, body).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

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
