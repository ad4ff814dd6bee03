// React state over LiveSocket for /ws/predictions: the newest predictions first, deduplicated by
// id, with connection state and pause/resume.
import { useCallback, useEffect, useEffectEvent, useRef, useState } from "react";
import { wsUrl } from "../api/client";
import type { Prediction, WsMessage } from "../api/types";
import { type Backoff, LiveSocket, type LiveSocketState } from "../lib/liveSocket";

export interface LiveFeed extends LiveSocketState {
  items: Prediction[];
  heartbeatVersion: string | null;
  pause: () => void;
  resume: () => void;
  retryNow: () => void;
}

export interface LiveFeedOptions {
  symbol?: string;
  url?: (since: string | null) => string;
  maxItems?: number;
  backoff?: Partial<Backoff>;
  WebSocketImpl?: typeof WebSocket;
  onPrediction?: (p: Prediction) => void;
}

const key = (p: Prediction) => p.prediction_id ?? `${p.symbol}|${p.ts}|${p.model_version}`;

/** Merge one prediction into a newest-first list: replace by id, keep ts order, cap the length. */
export function mergePrediction(items: Prediction[], p: Prediction, max: number): Prediction[] {
  const k = key(p);
  const rest = items.filter((x) => key(x) !== k);
  const idx = rest.findIndex((x) => (x.ts ?? "") < (p.ts ?? ""));
  const at = idx === -1 ? rest.length : idx;
  return [...rest.slice(0, at), p, ...rest.slice(at)].slice(0, max);
}

const NONE: Prediction[] = [];

export function useLiveFeed(opts: LiveFeedOptions = {}): LiveFeed {
  const { symbol, maxItems = 50 } = opts;
  // the items belong to the socket that gathered them: a new symbol (or cap) starts from none
  const feedKey = JSON.stringify([symbol ?? null, maxItems]);
  const [feed, setFeed] = useState<{ key: string; items: Prediction[] }>({
    key: feedKey,
    items: NONE,
  });
  const items = feed.key === feedKey ? feed.items : NONE;
  const [hb, setHb] = useState<string | null>(null);
  const [state, setState] = useState<LiveSocketState>({
    status: "connecting",
    attempt: 0,
    retryAt: null,
    paused: false,
    buffered: 0,
    lastMessageAt: null,
    lastError: null,
  });
  const sock = useRef<LiveSocket | null>(null);
  const itemsRef = useRef<Prediction[]>([]);
  // the latest callback, without restarting the socket when the caller passes a new one
  const onPrediction = useEffectEvent((p: Prediction) => opts.onPrediction?.(p));

  useEffect(() => {
    itemsRef.current = [];
    const s = new LiveSocket({
      url: opts.url ?? ((since) => wsUrl("/ws/predictions", { symbol, since: since ?? undefined })),
      backoff: opts.backoff,
      WebSocketImpl: opts.WebSocketImpl,
      // resume from the newest forecast the server's table holds: its feature hour
      resumeFrom: () => itemsRef.current[0]?.ts ?? null,
      onState: setState,
      onMessage: (m: WsMessage) => {
        if (m.type === "prediction") {
          itemsRef.current = mergePrediction(itemsRef.current, m.data, maxItems);
          setFeed({ key: feedKey, items: itemsRef.current });
          onPrediction(m.data);
        } else if (m.type === "heartbeat") {
          setHb(m.model_version ?? null);
        }
      },
    });
    sock.current = s;
    s.start();
    return () => s.stop();
    // url/backoff/impl are fixed per mount; the symbol restarts the socket (feedKey is symbol + cap)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [symbol, maxItems, feedKey]);

  const pause = useCallback(() => sock.current?.pause(), []);
  const resume = useCallback(() => sock.current?.resume(), []);
  const retryNow = useCallback(() => sock.current?.retryNow(), []);
  return { ...state, items, heartbeatVersion: hb, pause, resume, retryNow };
}
