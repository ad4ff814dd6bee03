// The system clock as the API reports it (wall time, or the replay server's market clock during
// an offline demo), and the cron arithmetic the System page needs to judge a job's staleness.

/** One reading of the server's clock: its `checked_at`, its speed, and when the answer arrived. */
export interface ClockReading {
  /** ISO time on the server's clock when it answered. */
  checkedAt: string;
  /** Clock seconds per wall second (1 for wall time, e.g. 120 for a fast replay). */
  speed: number;
  /** Browser wall time (ms) when the answer arrived (react-query's `dataUpdatedAt`). */
  fetchedAt: number;
}

/** Clock seconds that have passed since the reading, at browser wall time `wallNow` (ms). */
export function clockElapsedS(r: ClockReading, wallNow: number): number {
  return (Math.max(0, wallNow - r.fetchedAt) / 1000) * r.speed;
}

/** "Now" on the server's clock (ms), extrapolated from a reading to browser wall time `wallNow`. */
export function clockNow(r: ClockReading, wallNow: number): number {
  return Date.parse(r.checkedAt) + clockElapsedS(r, wallNow) * 1000;
}

/** "120×", "0.5×". */
export const speedLabel = (speed: number): string =>
  `${Number.isInteger(speed) ? speed : Number(speed.toFixed(2))}×`;

/** The values a cron field selects: `*`, `n`, `a-b`, `*\/s`, `a-b/s`, `n/s` and lists of them. */
function expand(spec: string, lo: number, hi: number): number[] | null {
  const out = new Set<number>();
  for (const part of spec.split(",")) {
    const m = /^(?:\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) return null;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    let a = lo;
    let b = hi;
    if (m[1] !== undefined) {
      a = Number(m[1]);
      b = m[2] !== undefined ? Number(m[2]) : m[3] !== undefined ? hi : a;
    }
    if (step < 1 || a < lo || b > hi || a > b) return null;
    for (let v = a; v <= b; v += step) out.add(v);
  }
  return [...out].sort((x, y) => x - y);
}

/** The longest gap between consecutive selected values, wrapping around the cycle. */
function maxGap(values: number[], cycle: number): number {
  let gap = values[0] + cycle - values[values.length - 1];
  for (let i = 1; i < values.length; i++) gap = Math.max(gap, values[i] - values[i - 1]);
  return gap;
}

const MACROS: Record<string, number> = {
  "@hourly": 3600,
  "@daily": 86400,
  "@midnight": 86400,
  "@weekly": 7 * 86400,
  "@monthly": 31 * 86400,
  "@yearly": 366 * 86400,
  "@annually": 366 * 86400,
};

/**
 * The longest interval (seconds) between two slots of a 5-field cron expression, judged by its
 * coarsest restricted field: "*\/15 * * * *" → 900, "5 * * * *" → 3600, "0 3 * * *" → 86400,
 * "0 3 * * 0" → 604800. Approximate on purpose (a month counts 31 days; when both day fields are
 * restricted the day-of-month one decides, the longer of the two). null when it cannot tell
 * (names like "mon", six fields): the caller falls back to a fixed threshold.
 */
export function cronPeriodS(cron: string): number | null {
  const expr = cron.trim().toLowerCase();
  if (expr in MACROS) return MACROS[expr];
  const f = expr.split(/\s+/);
  if (f.length !== 5) return null;
  const [min, hour, dom, mon, dow] = f;
  const fields = [
    expand(min, 0, 59),
    expand(hour, 0, 23),
    expand(dom, 1, 31),
    expand(mon, 1, 12),
    expand(dow, 0, 7),
  ];
  if (fields.some((v) => v === null || v.length === 0)) return null;
  const [mins, hours, doms, mons, dows] = fields as number[][];
  if (mon !== "*") return maxGap(mons, 12) * 31 * 86400;
  if (dom !== "*") return maxGap(doms, 31) * 86400;
  if (dow !== "*")
    return (
      maxGap(
        [...new Set(dows.map((d) => d % 7))].sort((a, b) => a - b),
        7,
      ) * 86400
    );
  if (hour !== "*") return maxGap(hours, 24) * 3600;
  return maxGap(mins, 60) * 60;
}
