// A reconnecting WebSocket client for /ws/predictions and /ws/metrics, independent of React.
//
// - Reconnects with exponential backoff (capped, optional jitter) after any close we did not ask for.
// - On reconnect, asks for `since=<newest prediction ts>` so the server replays what was missed
//   (ws.py reads them from the table); predictions are deduplicated by prediction_id.
// - `seq` is per connection: a message whose seq is not above the last one seen is dropped, so a
//   late duplicate cannot reorder the feed.
// - Pause keeps the connection open and buffers messages; resume delivers them in arrival order.
import type { WsMessage } from "../api/types";

export type SocketStatus = "connecting" | "open" | "reconnecting" | "closed";

export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: share of each delay drawn at random, so many tabs do not reconnect in lockstep. */
  jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 15000, factor: 2, jitter: 0.2 };

export function backoffDelay(
  attempt: number,
  b: Backoff,
  rand: () => number = Math.random,
): number {
  const base = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - b.jitter + b.jitter * rand()));
}

export interface LiveSocketState {
  status: SocketStatus;
  /** reconnect attempts since the last successful open */
  attempt: number;
  /** when the next reconnect is due (epoch ms), while reconnecting */
  retryAt: number | null;
  paused: boolean;
  buffered: number;
  lastMessageAt: number | null;
  lastError: string | null;
}

export interface LiveSocketOptions {
  /** Builds the URL for each (re)connection; `since` is the resume point, if any. */
  url: (since: string | null) => string;
  onMessage: (msg: WsMessage) => void;
  onState?: (s: LiveSocketState) => void;
  backoff?: Partial<Backoff>;
  WebSocketImpl?: typeof WebSocket;
  /** the resume point, given the messages delivered so far */
  resumeFrom?: () => string | null;
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private lastSeq = 0;
  private buffer: WsMessage[] = [];
  private readonly backoff: Backoff;
  private state: LiveSocketState = {
    status: "connecting",
    attempt: 0,
    retryAt: null,
    paused: false,
    buffered: 0,
    lastMessageAt: null,
    lastError: null,
  };

  constructor(private readonly opts: LiveSocketOptions) {
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  get snapshot(): LiveSocketState {
    return this.state;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(1000, "client closed");
    this.set({ status: "closed", retryAt: null });
  }

  pause(): void {
    this.set({ paused: true });
  }

  resume(): void {
    const pending = this.buffer;
    this.buffer = [];
    this.set({ paused: false, buffered: 0 });
    for (const m of pending) this.opts.onMessage(m);
  }

  /** Reconnect now instead of waiting for the backoff timer. */
  retryNow(): void {
    if (this.stopped || this.state.status === "open") return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  private set(patch: Partial<LiveSocketState>): void {
    this.state = { ...this.state, ...patch };
    this.opts.onState?.(this.state);
  }

  private connect(): void {
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    const since = this.opts.resumeFrom?.() ?? null;
    this.lastSeq = 0; // seq restarts with every connection
    this.set({ status: this.state.attempt > 0 ? "reconnecting" : "connecting", retryAt: null });
    let ws: WebSocket;
    try {
      ws = new Impl(this.opts.url(since));
    } catch (e) {
      this.set({ lastError: (e as Error).message });
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      // attempt is reset by the first message, not here: a server that accepts and then closes
      // at once must still back off rather than be hammered at the initial delay.
      this.set({ status: "open", lastError: null });
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      let msg: WsMessage;
      try {
        msg = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data)) as WsMessage;
      } catch {
        this.set({ lastError: "ignored a message that is not JSON" });
        return;
      }
      if (typeof msg.seq === "number") {
        if (msg.seq <= this.lastSeq) return; // duplicate or out of order within this connection
        this.lastSeq = msg.seq;
      }
      this.set({ lastMessageAt: Date.now(), attempt: 0 });
      if (this.state.paused) {
        this.buffer.push(msg);
        this.set({ buffered: this.buffer.length });
      } else {
        this.opts.onMessage(msg);
      }
    };
    ws.onerror = () => {
      if (this.ws === ws) this.set({ lastError: "connection error" });
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 1008) {
        // policy violation (bad symbol/since): retrying the same URL cannot help
        this.set({ status: "closed", lastError: `closed by server: ${ev.reason || ev.code}` });
        return;
      }
      this.set({ lastError: this.state.lastError ?? `closed (${ev.code})` });
      this.schedule();
    };
  }

  private schedule(): void {
    if (this.stopped) return;
    const attempt = this.state.attempt + 1;
    const delay = backoffDelay(attempt, this.backoff);
    this.set({ status: "reconnecting", attempt, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}
