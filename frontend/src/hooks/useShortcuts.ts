// Global single-key shortcuts, ignored while typing in a field or with a modifier held.
import { useEffect, useEffectEvent } from "react";

export type ShortcutMap = Record<string, (e: KeyboardEvent) => void>;

export const SHORTCUTS: { key: string; what: string }[] = [
  { key: "1", what: "Dashboard" },
  { key: "2", what: "Predict" },
  { key: "3", what: "Analytics" },
  { key: "4", what: "System" },
  { key: "5", what: "Models" },
  { key: "t", what: "Toggle light/dark theme" },
  { key: "p", what: "Pause/resume the live feed (Dashboard)" },
  { key: "/", what: "Focus the first field (Predict)" },
  { key: "?", what: "Show/hide this help" },
];

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

export function useShortcuts(map: ShortcutMap): void {
  // an effect event sees the latest map without re-adding the listener on every render
  const onKey = useEffectEvent((e: KeyboardEvent) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    const fn = map[e.key];
    if (fn) {
      e.preventDefault();
      fn(e);
    }
  });
  useEffect(() => {
    const listener = (e: KeyboardEvent) => onKey(e);
    window.addEventListener("keydown", listener);
    return () => window.removeEventListener("keydown", listener);
  }, []);
}
