// Number and time formatting shared by the pages (one place, so every page says it the same way).
export const pct = (v: number | null | undefined, digits = 1): string =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(digits)}%`;

/** A log return as a signed simple-return percentage. */
export const logRetPct = (v: number | null | undefined, digits = 2): string =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : `${v >= 0 ? "+" : ""}${(Math.expm1(v) * 100).toFixed(digits)}%`;

export const signedPct = (v: number | null | undefined, digits = 1): string =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : `${v >= 0 ? "+" : ""}${(v * 100).toFixed(digits)}%`;

export const num = (v: unknown, digits = 3): string =>
  typeof v === "number" && Number.isFinite(v)
    ? v.toFixed(digits)
    : v === null || v === undefined
      ? "–"
      : String(v);

export const usd = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : v.toLocaleString("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });

/** "2022-07-05 09:00 UTC": with the year, for times that may be long past. */
export const utcDateTime = (iso: string | null | undefined): string =>
  iso ? `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC` : "–";

/** "14:00 UTC" style; every time on the dashboard is UTC, like the data. */
export const utcHour = (iso: string | null | undefined): string =>
  iso ? `${new Date(iso).toISOString().slice(5, 16).replace("T", " ")} UTC` : "–";

export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** "4.2 years", "3.0 days", "5.0 hours", "12 minutes": how old data is, as a person says it. */
export function humanAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const steps: [string, number, number][] = [
    ["years", 365.25 * 86400, 1],
    ["days", 86400, 2],
    ["hours", 3600, 1],
  ];
  for (const [unit, n, atLeast] of steps) {
    if (seconds >= atLeast * n) return `${(seconds / n).toFixed(1)} ${unit}`;
  }
  return `${Math.round(seconds / 60)} minutes`;
}
