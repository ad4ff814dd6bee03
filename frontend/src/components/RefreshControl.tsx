// The header's live-panel control: pause/resume every poll and push on screen, and the refresh
// rate ("auto": each panel's own period). The setting is the dashboard's (hooks/useRefresh).
import { type Rate, RATES, setRefresh, useRefreshState } from "../hooks/useRefresh";

export function RefreshControl() {
  const { rate, paused } = useRefreshState();
  return (
    <div className="flex items-center gap-1 text-sm" role="group" aria-label="Live panels">
      <button
        type="button"
        data-testid="live-pause"
        aria-pressed={paused}
        onClick={() => setRefresh({ paused: !paused })}
        title={paused ? "Resume live panels" : "Pause live panels"}
        className="rounded-md border border-slate-300 px-2 py-1 dark:border-slate-700"
      >
        {paused ? "▶ Resume" : "⏸ Pause"}
      </button>
      <label htmlFor="refresh-rate" className="sr-only">
        Refresh rate
      </label>
      <select
        id="refresh-rate"
        data-testid="refresh-rate"
        value={String(rate)}
        title="Refresh rate of the live panels"
        onChange={(e) =>
          setRefresh({
            rate: (e.target.value === "auto" ? "auto" : Number(e.target.value)) as Rate,
          })
        }
        className="rounded-md border border-slate-300 bg-white px-1 py-1 text-sm text-slate-900 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100"
      >
        {RATES.map((r) => (
          <option key={String(r.value)} value={String(r.value)}>
            {r.value === "auto" ? "refresh: auto" : `every ${r.label}`}
          </option>
        ))}
      </select>
    </div>
  );
}
