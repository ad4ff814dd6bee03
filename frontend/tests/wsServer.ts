// A real local WebSocket server (the `ws` package) speaking /ws/predictions' protocol, for the
// hook tests: it records each connection's URL and lets a test send, drop, or refuse clients.
import { type AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";

export interface FakeServer {
  url: string;
  connections: { url: string; socket: WebSocket; seq: number }[];
  send: (msg: unknown, i?: number) => void;
  dropAll: () => void;
  refuse: (on: boolean) => void;
  waitForConnections: (n: number, timeoutMs?: number) => Promise<void>;
  close: () => Promise<void>;
}

export async function startServer(): Promise<FakeServer> {
  let refusing = false;
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const connections: FakeServer["connections"] = [];
  wss.on("connection", (socket, req) => {
    if (refusing) {
      socket.close(1011, "refused");
      return;
    }
    const conn = { url: req.url ?? "", socket, seq: 0 };
    connections.push(conn);
    // like ws.py: a heartbeat (seq 1) as soon as the socket is accepted
    conn.seq += 1;
    socket.send(
      JSON.stringify({
        type: "heartbeat",
        seq: conn.seq,
        ts: Date.now() / 1000,
        model_version: "3",
      }),
    );
  });
  const port = (wss.address() as AddressInfo).port;
  const live = () => connections.filter((c) => c.socket.readyState === WebSocket.OPEN);
  return {
    url: `ws://127.0.0.1:${port}`,
    connections,
    send: (msg, i) => {
      const target = i === undefined ? live()[live().length - 1] : connections[i];
      if (typeof msg === "string") return target.socket.send(msg);
      // per-connection seq like the server's, unless the test sets one on purpose
      const m = msg as { seq?: number };
      if (m.seq === undefined) target.seq += 1;
      else target.seq = Math.max(target.seq, m.seq);
      target.socket.send(JSON.stringify(m.seq === undefined ? { ...m, seq: target.seq } : m));
    },
    dropAll: () => live().forEach((c) => c.socket.terminate()),
    refuse: (on) => {
      refusing = on;
    },
    waitForConnections: async (n, timeoutMs = 5000) => {
      const t0 = Date.now();
      while (connections.length < n) {
        if (Date.now() - t0 > timeoutMs)
          throw new Error(`only ${connections.length} of ${n} connections`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () =>
      new Promise<void>((r) => {
        connections.forEach((c) => c.socket.terminate());
        wss.close(() => r());
      }),
  };
}

let n = 0;
/** A prediction message body, shaped like the API's Prediction. */
export function prediction(ts: string, p_up = 0.6, id?: string) {
  n += 1;
  return {
    prediction_id: id ?? `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    symbol: "BTCUSDT",
    ts,
    as_of: ts,
    data_age_s: 3600,
    stale: false,
    data_age_now_s: 3600,
    stale_now: false,
    horizon_h: 1,
    expected_return: 0.001,
    direction: p_up >= 0.5 ? 1 : -1,
    direction_label: p_up >= 0.5 ? "up" : "down",
    p_up,
    interval: {
      level: 0.9,
      method: "cqr_vol_aci",
      low: -0.012,
      high: 0.012,
      price_low: null,
      price_high: null,
      alpha_t: 0.1,
      coverage: 0.9,
      resolved: 10,
      missing: [],
    },
    // the fan as served (log returns; prices null: the chart anchors them to the close at ts)
    intervals: [
      { level: 0.5, low: -0.004, high: 0.004, price_low: null, price_high: null },
      { level: 0.8, low: -0.009, high: 0.009, price_low: null, price_high: null },
      { level: 0.9, low: -0.012, high: 0.012, price_low: null, price_high: null },
    ],
    quantiles: [
      { p: 0.05, log_return: -0.008, price: null },
      { p: 0.5, log_return: 0, price: null },
      { p: 0.95, log_return: 0.008, price: null },
    ],
    volatility: 0.005,
    model_name: "bitcoin_predictor",
    model_version: "3",
    feature_set_version: "core-v1",
    features: {},
    explanation: null,
    degraded: false,
    logged: true,
  };
}
