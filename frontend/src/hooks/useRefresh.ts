// The refresh rate of the live panels, one setting for the whole dashboard: "auto" (each panel's
// own period), a fixed period, or paused (no polling at all until resumed). Remembered in
// localStorage; an external store, so any hook can read it without a provider.
import { useSyncExternalStore } from "react";

export const RATE_KEY = "rayapp.refresh";
export type Rate = "auto" | 5000 | 15000 | 60000;
export const RATES: { value: Rate; label: string }[] = [
  { value: "auto", label: "auto" },
  { value: 5000, label: "5 s" },
  { value: 15000, label: "15 s" },
  { value: 60000, label: "1 min" },
];

export interface RefreshState {
  rate: Rate;
  paused: boolean;
}

function load(): RefreshState {
  try {
    const raw = JSON.parse(
      localStorage.getItem(RATE_KEY) ?? "null",
    ) as Partial<RefreshState> | null;
    const rate = RATES.find((r) => r.value === raw?.rate)?.value ?? "auto";
    return { rate, paused: raw?.paused === true };
  } catch {
    return { rate: "auto", paused: false };
  }
}

let state: RefreshState = load();
const listeners = new Set<() => void>();

export function setRefresh(next: Partial<RefreshState>): void {
  state = { ...state, ...next };
  try {
    localStorage.setItem(RATE_KEY, JSON.stringify(state));
  } catch {
    /* private mode: not remembered */
  }
  for (const l of listeners) l();
}

const subscribe = (l: () => void) => {
  listeners.add(l);
  return () => listeners.delete(l);
};

export const useRefreshState = (): RefreshState => useSyncExternalStore(subscribe, () => state);

/** The polling period for a panel whose own period is `ownMs`: false while paused. */
export function refreshPeriod(s: RefreshState, ownMs: number): number | false {
  if (s.paused) return false;
  return s.rate === "auto" ? ownMs : s.rate;
}

export const useRefresh = (ownMs: number): number | false =>
  refreshPeriod(useRefreshState(), ownMs);
