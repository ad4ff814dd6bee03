// The /ws/metrics channel: the newest serving metrics snapshot and the socket state.
import { useEffect, useState } from "react";
import { wsUrl } from "../api/client";
import type { MetricsSnapshot } from "../api/types";
import { LiveSocket, type LiveSocketState } from "../lib/liveSocket";

export function useMetricsFeed(): {
  snapshot: MetricsSnapshot | null;
  at: number | null;
  state: LiveSocketState | null;
} {
  const [snapshot, setSnapshot] = useState<MetricsSnapshot | null>(null);
  const [at, setAt] = useState<number | null>(null);
  const [state, setState] = useState<LiveSocketState | null>(null);
  useEffect(() => {
    const s = new LiveSocket({
      url: () => wsUrl("/ws/metrics"),
      onState: setState,
      onMessage: (m) => {
        if (m.type === "metrics") {
          setSnapshot(m.data);
          setAt(m.ts * 1000);
        }
      },
    });
    s.start();
    return () => s.stop();
  }, []);
  return { snapshot, at, state };
}
