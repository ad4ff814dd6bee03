// The Models page's rules: each version's role from its aliases and the lifecycle state, the
// shadow-vs-champion verdict in words, and feature importance across versions as chart rows.
import type { Models, RegisteredVersion, VersionImportance } from "../api/types";

export type Role = "champion" | "challenger" | "shadow" | "retired";

/** Champion (alias), shadow (alias, or the lifecycle's version in shadow), challenger (alias), else retired. */
export function roleOf(v: RegisteredVersion, m: Models): Role {
  if (v.aliases.includes("champion")) return "champion";
  const st = m.lifecycle.state;
  if (
    v.aliases.includes("shadow") ||
    (st?.shadow_version != null && st.shadow_version === v.version)
  )
    return "shadow";
  if (v.aliases.includes("challenger")) return "challenger";
  return "retired";
}

export const ROLE_PILL: Record<Role, string> = {
  champion: "bg-emerald-700 text-white", // white on emerald-600 is 3.65:1, under AA's 4.5:1
  challenger: "bg-blue-700 text-white dark:bg-blue-600",
  shadow: "bg-violet-700 text-white dark:bg-violet-600",
  retired: "bg-slate-200 text-slate-800 dark:bg-slate-700 dark:text-slate-100",
};

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export interface Comparison {
  kind: string;
  version: string | null;
  against: string | null;
  decision: string | null;
  pValue: number | null;
  alpha: number | null;
  n: number | null;
  accuracyDiff: number | null;
  loglossGain: number | null;
  reason: string | null;
}

/** The newest shadow or watch verdict's figures (evidence keys as rayapp/lifecycle/policy.py writes them). */
export function comparison(m: Models): Comparison | null {
  const e = m.lifecycle.latest_comparison;
  if (!e) return null;
  const ev = e.evidence ?? {};
  return {
    kind: e.kind,
    version: e.version,
    against: e.other_version,
    decision: e.decision,
    pValue: e.p_value,
    alpha: num(ev.alpha),
    n: num(ev.n) ?? num(ev.paired),
    accuracyDiff: num(ev.accuracy_diff),
    loglossGain: num(ev.logloss_gain),
    reason: typeof ev.reason === "string" ? ev.reason : null,
  };
}

/** Verdict words with their level: promote/keep/end are good news, refuse/rollback bad, wait neutral. */
export function verdictLevel(decision: string | null): "ok" | "bad" | "idle" {
  if (decision === "promote" || decision === "keep" || decision === "kept" || decision === "end")
    return "ok";
  if (decision === "refuse" || decision === "rollback") return "bad";
  return "idle";
}

/**
 * Importance across versions, oldest first: one row per version with a value per feature, for the
 * `top` features that matter most on average. Versions without a logged importance are left out.
 */
export function importanceRows(
  items: VersionImportance[],
  top = 6,
): { features: string[]; rows: Record<string, number | string>[] } {
  const logged = items.filter((i) => i.importance && Object.keys(i.importance).length > 0);
  const totals = new Map<string, number>();
  for (const i of logged)
    for (const [f, v] of Object.entries(i.importance!)) totals.set(f, (totals.get(f) ?? 0) + v);
  const features = [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f]) => f);
  const rows = [...logged]
    .sort((a, b) => Number(a.version) - Number(b.version))
    .map((i) => ({
      version: `v${i.version}`,
      ...Object.fromEntries(features.map((f) => [f, i.importance![f] ?? 0])),
    }));
  return { features, rows };
}
