// The live feed over /ws/predictions: connection state, pause/resume, newest forecast first;
// a forecast served from stale data is marked so.
import type { Prediction } from "../api/types";
import {
  CONFIDENCE_STEPS,
  type Direction,
  type ForecastFilter,
  NO_FILTER,
  passes,
} from "../lib/timeWindow";
import type { LiveFeed } from "../hooks/useLiveFeed";
import { useNow } from "../hooks/useNow";
import { ago, humanAge, logRetPct, pct, utcHour } from "../lib/format";
import { btn, Card, Dot, type Level } from "./ui";

function stateOf(feed: LiveFeed, now: number): { level: Level; text: string } {
  if (feed.paused)
    return { level: "warn", text: `Paused${feed.buffered ? ` (${feed.buffered} waiting)` : ""}` };
  switch (feed.status) {
    case "open":
      return { level: "ok", text: "Live" };
    case "connecting":
      return { level: "idle", text: "Connecting…" };
    case "reconnecting": {
      const s = feed.retryAt ? Math.max(0, Math.ceil((feed.retryAt - now) / 1000)) : 0;
      return {
        level: "bad",
        text: `Reconnecting${s ? ` in ${s}s` : "…"} (attempt ${feed.attempt})`,
      };
    }
    default:
      return { level: "bad", text: `Disconnected${feed.lastError ? `: ${feed.lastError}` : ""}` };
  }
}

/** The feed: what arrived over the socket, then recent history (older, from /predictions). */
export function feedRows(
  live: Prediction[],
  history: Prediction[],
  max = 20,
): { p: Prediction; live: boolean }[] {
  const seen = new Set(live.map((p) => p.prediction_id));
  const older = history
    .filter((p) => !seen.has(p.prediction_id))
    .sort((a, b) => String(b.ts).localeCompare(String(a.ts)));
  return [...live.map((p) => ({ p, live: true })), ...older.map((p) => ({ p, live: false }))].slice(
    0,
    max,
  );
}

export function LiveFeedPanel({
  feed,
  history = [],
  filter = NO_FILTER,
  onFilter,
}: {
  feed: LiveFeed;
  history?: Prediction[];
  filter?: ForecastFilter;
  onFilter?: (f: ForecastFilter) => void;
}) {
  const now = useNow(1000);
  const st = stateOf(feed, now);
  const all = feedRows(feed.items, history, 200);
  const rows = all.filter(({ p }) => passes(p, filter)).slice(0, 20);
  return (
    <Card
      id="feed"
      title="Live predictions"
      actions={
        <div className="flex items-center gap-2 text-sm">
          <span data-testid="ws-state" data-status={feed.status} aria-live="polite">
            <Dot level={st.level} label={st.text} />
          </span>
          {feed.status === "reconnecting" && (
            <button type="button" className={btn} onClick={feed.retryNow}>
              Retry now
            </button>
          )}
          <button
            type="button"
            className={btn}
            data-testid="feed-pause"
            aria-pressed={feed.paused}
            onClick={feed.paused ? feed.resume : feed.pause}
            title="Pause/resume (p)"
          >
            {feed.paused ? "Resume" : "Pause"}
          </button>
        </div>
      }
    >
      {onFilter && (
        <div
          className="mb-2 flex flex-wrap items-center gap-3 text-sm"
          role="group"
          aria-label="Filter forecasts"
        >
          <label className="inline-flex items-center gap-1">
            Direction
            <select
              data-testid="filter-direction"
              className="rounded-md border border-slate-300 bg-white px-1 py-0.5 text-slate-900 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100"
              value={filter.direction}
              onChange={(e) => onFilter({ ...filter, direction: e.target.value as Direction })}
            >
              <option value="all">all</option>
              <option value="up">up</option>
              <option value="down">down</option>
            </select>
          </label>
          <label className="inline-flex items-center gap-1">
            Confidence |P(up) − 50%| ≥
            <select
              data-testid="filter-confidence"
              className="rounded-md border border-slate-300 bg-white px-1 py-0.5 text-slate-900 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100"
              value={String(filter.minConfidence)}
              onChange={(e) => onFilter({ ...filter, minConfidence: Number(e.target.value) })}
            >
              {CONFIDENCE_STEPS.map((c) => (
                <option key={c} value={String(c)}>
                  {Math.round(c * 100)} pts
                </option>
              ))}
            </select>
          </label>
          <span className="text-xs text-slate-600 dark:text-slate-400" data-testid="filter-count">
            {rows.length} of {all.length} shown
          </span>
        </div>
      )}
      <p className="mb-2 text-xs text-slate-600 dark:text-slate-400">
        Last message {ago(feed.lastMessageAt, now)}
        {feed.heartbeatVersion ? ` · server model v${feed.heartbeatVersion}` : ""}
      </p>
      {rows.length === 0 ? (
        <p className="py-4 text-sm text-slate-600 dark:text-slate-400">
          {all.length > 0 ? "No forecast passes the filter." : "Waiting for the first prediction…"}
        </p>
      ) : (
        <div
          role="log"
          aria-live="polite"
          aria-label="Predictions, newest first"
          tabIndex={0}
          className="max-h-96 overflow-y-auto"
        >
          <ol data-testid="feed-list" className="divide-y divide-slate-200 dark:divide-slate-800">
            {rows.map(({ p, live }) => (
              <li
                key={p.prediction_id ?? p.ts}
                data-testid="feed-item"
                data-ts={p.ts ?? ""}
                data-source={live ? "live" : "history"}
                data-stale={p.stale ? "true" : "false"}
                title={live ? "received over the WebSocket" : "from the predictions history"}
                className="grid grid-cols-[auto_1fr_auto] items-center gap-3 py-2 text-sm"
              >
                <span
                  aria-label={p.direction_label}
                  className={`w-12 rounded px-1.5 py-0.5 text-center text-xs font-bold text-white ${p.direction === 1 ? "bg-emerald-700" : "bg-red-700"}`}
                >
                  {p.direction === 1 ? "▲ UP" : "▼ DN"}
                </span>
                <span className="tabular min-w-0">
                  <span className="font-medium">{utcHour(p.ts)}</span>{" "}
                  <span className="text-slate-600 dark:text-slate-400">
                    +{p.horizon_h}h · exp {logRetPct(p.expected_return)} · [
                    {logRetPct(p.interval.low)}, {logRetPct(p.interval.high)}]
                  </span>
                  {p.stale ? (
                    <span
                      data-testid="stale-mark"
                      title={`served from data ${humanAge(p.data_age_s)} old: not a live forecast`}
                      className="ml-1 rounded bg-red-700 px-1 text-xs font-semibold text-white"
                    >
                      stale data
                    </span>
                  ) : (
                    p.degraded && (
                      <span className="ml-1 rounded bg-amber-200 px-1 text-xs text-amber-900">
                        degraded
                      </span>
                    )
                  )}
                </span>
                <span className="tabular text-right font-semibold">P(up) {pct(p.p_up)}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </Card>
  );
}
