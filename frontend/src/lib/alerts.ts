// The alert feed's presentation rules (GET /alerts): severity order and colours, the header
// badge's summary, and the "recently resolved" list.
import type { Alert, AlertCounts, AlertSeverity } from "../api/types";

/** Most severe first (the API sorts `active` the same way). */
export const SEVERITIES: readonly AlertSeverity[] = ["high", "medium", "info"];

/** Pill colours by severity, with contrast on both themes (high red, medium amber, info blue). */
export const SEVERITY_PILL: Record<AlertSeverity, string> = {
  high: "bg-red-700 text-white dark:bg-red-600",
  medium: "bg-amber-300 text-amber-950 dark:bg-amber-400",
  info: "bg-blue-100 text-blue-900 dark:bg-slate-700 dark:text-blue-100",
};

/** The number of firing alerts and the most severe of them (null when none fire). */
export function alertSummary(counts: AlertCounts | null | undefined): {
  total: number;
  severity: AlertSeverity | null;
} {
  if (!counts) return { total: 0, severity: null };
  const total = SEVERITIES.reduce((n, s) => n + Math.max(0, counts[s] ?? 0), 0);
  return { total, severity: SEVERITIES.find((s) => (counts[s] ?? 0) > 0) ?? null };
}

/** "3 active alerts, most severe: high". */
export const alertBadgeLabel = (total: number, severity: AlertSeverity | null): string =>
  `${total} active alert${total === 1 ? "" : "s"}` + (severity ? `, most severe: ${severity}` : "");

/** When an alert was resolved: its end, else when the feed heard of it. */
export const resolvedAt = (a: Alert): string => a.ends_at ?? a.received_at;

/** The resolved alerts of `recent`, newest resolution first, at most `n`. */
export function recentlyResolved(recent: readonly Alert[], n = 10): Alert[] {
  return recent
    .filter((a) => a.status === "resolved")
    .sort((a, b) => Date.parse(resolvedAt(b)) - Date.parse(resolvedAt(a)))
    .slice(0, n);
}

/** A runbook given as a web address (rendered as a link); a repo path like docs/X.md#y is text. */
export const isWebUrl = (s: string | null | undefined): s is string =>
  !!s && /^https?:\/\//i.test(s);
