// Small presentational pieces shared by the pages.
import type { ReactNode } from "react";

export function Card({
  title,
  children,
  actions,
  className = "",
  id,
  testId,
}: {
  title?: ReactNode;
  children: ReactNode;
  actions?: ReactNode;
  className?: string;
  id?: string;
  testId?: string;
}) {
  const headingId = id ? `${id}-title` : undefined;
  return (
    <section
      aria-labelledby={headingId}
      data-testid={testId}
      className={`min-w-0 rounded-xl border border-slate-200 bg-white p-4 shadow-sm dark:border-slate-800 dark:bg-slate-900 ${className}`}
    >
      {(title || actions) && (
        <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
          {title && (
            <h2
              id={headingId}
              className="text-sm font-semibold tracking-wide text-slate-700 uppercase dark:text-slate-300"
            >
              {title}
            </h2>
          )}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

export function Stat({
  label,
  value,
  sub,
  testId,
}: {
  label: string;
  value: ReactNode;
  sub?: ReactNode;
  testId?: string;
}) {
  return (
    <div data-testid={testId}>
      <div className="text-xs text-slate-600 dark:text-slate-400">{label}</div>
      <div className="tabular text-xl font-semibold">{value}</div>
      {sub && <div className="tabular text-xs text-slate-600 dark:text-slate-400">{sub}</div>}
    </div>
  );
}

const DOT = {
  ok: "bg-emerald-500",
  warn: "bg-amber-500",
  bad: "bg-red-500",
  idle: "bg-slate-400",
} as const;
export type Level = keyof typeof DOT;

export function Dot({ level, label }: { level: Level; label: string }) {
  return (
    <span className="inline-flex items-center gap-1.5" data-level={level}>
      <span aria-hidden="true" className={`inline-block h-2.5 w-2.5 rounded-full ${DOT[level]}`} />
      <span>{label}</span>
    </span>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div
      role="status"
      aria-live="polite"
      className="animate-pulse py-6 text-center text-sm text-slate-600 dark:text-slate-400"
    >
      Loading {what}…
    </div>
  );
}

export function ErrorNote({ error, retry }: { error: unknown; retry?: () => void }) {
  const msg = error instanceof Error ? error.message : String(error);
  return (
    <div
      role="alert"
      className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200"
    >
      <span>{msg}</span>
      {retry && (
        <button
          type="button"
          onClick={retry}
          className="ml-3 rounded border border-red-400 px-2 py-0.5 font-medium hover:bg-red-100 dark:hover:bg-red-900"
        >
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="py-4 text-sm text-slate-600 dark:text-slate-400">{children}</p>;
}

export const btn =
  "inline-flex items-center gap-1 rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800 " +
  "hover:bg-slate-100 disabled:cursor-not-allowed disabled:opacity-50 dark:border-slate-700 dark:bg-slate-800 dark:text-slate-100 dark:hover:bg-slate-700";
export const btnPrimary =
  "inline-flex items-center gap-1 rounded-md bg-blue-700 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-800 " +
  "disabled:cursor-not-allowed disabled:opacity-50 dark:bg-blue-600 dark:hover:bg-blue-700";
export const input =
  "w-full rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm text-slate-900 aria-[invalid=true]:border-red-600 " +
  "dark:border-slate-700 dark:bg-slate-950 dark:text-slate-100 dark:aria-[invalid=true]:border-red-400";

/** Chart colours that keep contrast on both themes. */
export const chartColors = (dark: boolean) => ({
  grid: dark ? "#334155" : "#e2e8f0",
  axis: dark ? "#cbd5e1" : "#334155",
  price: dark ? "#93c5fd" : "#1d4ed8",
  band: dark ? "#60a5fa" : "#3b82f6",
  up: dark ? "#34d399" : "#047857",
  down: dark ? "#f87171" : "#b91c1c",
  muted: dark ? "#94a3b8" : "#64748b",
  tooltipBg: dark ? "#0f172a" : "#ffffff",
});
