// The /ws/system channel: component health and the scheduler's jobs as the server pushes them
// (rayapp/serving/system_ws.py). While the dashboard's live panels are paused, pushes are kept
// out of view (the socket stays open, so resuming shows the newest at once).
import { useEffect, useState } from "react";
import { wsUrl } from "../api/client";
import type { SystemSnapshot } from "../api/types";
import { LiveSocket, type LiveSocketState } from "../lib/liveSocket";
import { useRefreshState } from "./useRefresh";

export function useSystemFeed(): {
  snapshot: SystemSnapshot | null;
  at: number | null;
  state: LiveSocketState | null;
} {
  const [latest, setLatest] = useState<{ data: SystemSnapshot; at: number } | null>(null);
  const [shown, setShown] = useState<{ data: SystemSnapshot; at: number } | null>(null);
  const [state, setState] = useState<LiveSocketState | null>(null);
  const { paused } = useRefreshState();
  useEffect(() => {
    const s = new LiveSocket({
      url: () => wsUrl("/ws/system"),
      onState: setState,
      onMessage: (m) => {
        if (m.type === "system") setLatest({ data: m.data, at: m.ts * 1000 });
      },
    });
    s.start();
    return () => s.stop();
  }, []);
  // eslint-disable-next-line react-hooks/set-state-in-effect -- mirror the newest push unless paused
  useEffect(() => void (!paused && setShown(latest)), [latest, paused]);
  return { snapshot: shown?.data ?? null, at: shown?.at ?? null, state };
}
