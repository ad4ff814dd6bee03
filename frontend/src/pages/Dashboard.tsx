// Dashboard: price + forecasts over a chosen range (24 h / 7 d / 30 d / all; zoom and pan inside
// it), the live feed filtered by direction and confidence, model/health, track record.
import { useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useMemo, useState } from "react";
import { useLocation } from "react-router-dom";
import { ApiError } from "../api/client";
import {
  keys,
  useHistory,
  useLatest,
  useModel,
  usePrices,
  useReady,
  useTrackRecord,
} from "../api/queries";
import type { Prediction } from "../api/types";
import { LiveFeedPanel } from "../components/LiveFeedPanel";
import { Card, Dot, ErrorNote, Loading, Stat } from "../components/ui";
import { useLiveFeed } from "../hooks/useLiveFeed";
import { useShortcuts } from "../hooks/useShortcuts";
import { humanAge, logRetPct, pct, utcHour } from "../lib/format";
import {
  clampWindow,
  type ForecastFilter,
  H,
  NO_FILTER,
  panWindow,
  passes,
  PRESETS,
  type PresetKey,
  presetHours,
  type Window,
  zoomWindow,
} from "../lib/timeWindow";
import { btn } from "../components/ui";
import { currentSymbol } from "../lib/symbol";

// Recharts is most of the JS: the charts load in parallel while the cards and the live feed
// (which need no chart code) render first.
const PriceChart = lazy(() =>
  import("../components/PriceChart").then((m) => ({ default: m.PriceChart })),
);
const TrackRecordPanel = lazy(() =>
  import("../components/TrackRecordPanel").then((m) => ({ default: m.TrackRecordPanel })),
);

export default function Dashboard() {
  const symbol = currentSymbol(useLocation().search);
  const qc = useQueryClient();
  // The week ends at the newest forecast's hour, not the browser's clock: under the replay feed
  // the market clock is years behind the wall clock. On the hour, so the key is stable.
  // Without a forecast yet, the clock when the page opened (read once, so the key stays put).
  const latestQ = useLatest(symbol);
  const [openedAt] = useState(() => Date.now());
  const latestTs = latestQ.data?.ts;
  const anchor =
    Math.floor((latestTs ? Date.parse(latestTs) : openedAt) / 3600e3) * 3600e3 + 3600e3;
  const [preset, setPreset] = useState<PresetKey>("7d");
  const [view, setView] = useState<Window | null>(null); // null: the whole range
  const [filter, setFilter] = useState<ForecastFilter>(NO_FILTER);
  const hours = presetHours(preset);
  const since = new Date(anchor - hours * H).toISOString();
  const history = useHistory(symbol, since, !latestQ.isLoading);
  // after the latest forecast: the headline numbers render first, the chart next
  const prices = usePrices(symbol, hours, !latestQ.isLoading);
  const model = useModel();
  const ready = useReady();
  const track = useTrackRecord(symbol);
  const feed = useLiveFeed({
    symbol,
    onPrediction: () => {
      void qc.invalidateQueries({ queryKey: keys.track(symbol) });
    },
  });
  useShortcuts({ p: () => (feed.paused ? feed.resume() : feed.pause()) });

  // chart forecasts: the history page plus whatever arrived live since
  const preds = useMemo(() => {
    const byId = new Map<string, Prediction>();
    for (const p of history.data?.items ?? []) byId.set(p.prediction_id ?? String(p.ts), p);
    for (const p of feed.items)
      if (p.ts && p.ts > since) byId.set(p.prediction_id ?? String(p.ts), p);
    return [...byId.values()].sort((a, b) => String(a.ts).localeCompare(String(b.ts)));
  }, [history.data, feed.items, since]);
  const latest = feed.items[0] ?? latestQ.data ?? preds[preds.length - 1];
  const shown = preds.filter((p) => passes(p, filter));
  const full: Window = [
    Date.parse(since),
    Math.max(anchor, Date.parse(preds[preds.length - 1]?.ts ?? "") || 0) +
      ((model.data?.horizon_h ?? 1) + 1) * H,
  ];
  const win = view ? clampWindow(view, full) : full;
  const label = PRESETS.find((p) => p.key === preset)!.label;
  const pricesMissing =
    prices.error instanceof ApiError && prices.error.status === 404
      ? "the API has no /prices route"
      : prices.isError
        ? (prices.error as Error).message
        : undefined;

  return (
    <div className="grid gap-4">
      <h1 className="sr-only">Dashboard</h1>
      <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        <Card id="latest" title="Latest forecast">
          {latest ? (
            <div className="grid grid-cols-2 gap-2">
              <Stat
                testId="latest-pup"
                label={`P(up), ${symbol} +${latest.horizon_h}h`}
                value={pct(latest.p_up)}
                sub={latest.direction === 1 ? "▲ up" : "▼ down"}
              />
              <Stat
                label="Expected return"
                value={logRetPct(latest.expected_return)}
                sub={`${latest.interval.level ? `${Math.round(latest.interval.level * 100)} % ` : ""}[${logRetPct(latest.interval.low)}, ${logRetPct(latest.interval.high)}]`}
              />
              <p className="col-span-2 text-xs text-slate-600 dark:text-slate-400">
                for {utcHour(latest.ts)}
                {latest.stale && (
                  <span className="ml-1 font-semibold text-red-800 dark:text-red-300">
                    · stale data ({humanAge(latest.data_age_s)} old)
                  </span>
                )}
              </p>
            </div>
          ) : history.isLoading ? (
            <Loading what="forecasts" />
          ) : (
            <p className="text-sm">No forecast yet.</p>
          )}
        </Card>
        <Card id="model" title="Model">
          {model.isLoading ? (
            <Loading what="model" />
          ) : model.isError ? (
            <ErrorNote error={model.error} retry={() => void model.refetch()} />
          ) : (
            <div className="grid gap-1 text-sm">
              <div data-testid="model-version" className="text-xl font-semibold">
                {model.data?.loaded
                  ? `${model.data.name} v${model.data.version}`
                  : "no model loaded"}
              </div>
              <div className="text-slate-600 dark:text-slate-400">
                {model.data?.feature_set_version ?? "–"} · horizon {model.data?.horizon_h ?? "–"}h
              </div>
            </div>
          )}
        </Card>
        <Card id="health" title="Health">
          {ready.isLoading ? (
            <Loading what="health" />
          ) : ready.isError ? (
            <ErrorNote error={ready.error} retry={() => void ready.refetch()} />
          ) : (
            <ul className="grid gap-1 text-sm" data-testid="health-list">
              <li>
                <Dot
                  level={ready.data?.ready ? "ok" : "bad"}
                  label={ready.data?.ready ? "Ready" : "Not ready"}
                />
              </li>
              <li title={ready.data?.reason ?? undefined}>
                <Dot
                  level={
                    ready.data?.live_data ? "ok" : ready.data?.sources === "replay" ? "idle" : "bad"
                  }
                  label={
                    ready.data?.live_data
                      ? "Live data"
                      : ready.data?.sources === "replay"
                        ? "Replay data (not live)"
                        : "No live data"
                  }
                />
              </li>
              <li>
                <Dot level={ready.data?.model_loaded ? "ok" : "bad"} label="Model" />
              </li>
              <li>
                <Dot level={ready.data?.redis ? "ok" : "bad"} label="Online store (Redis)" />
              </li>
              <li>
                <Dot level={ready.data?.postgres ? "ok" : "bad"} label="Warehouse (PostgreSQL)" />
              </li>
            </ul>
          )}
        </Card>
        <Card id="calls" title={`Last ${label}`}>
          <Stat
            label="Forecasts"
            value={preds.length}
            sub={`${preds.filter((p) => p.direction === 1).length} up · ${preds.filter((p) => p.direction !== 1).length} down`}
          />
        </Card>
      </div>
      <Card
        id="chart"
        title={`${symbol} hourly, last ${label}`}
        actions={
          <div className="flex flex-wrap items-center gap-1" data-testid="chart-controls">
            <div role="group" aria-label="Time range" className="flex gap-1">
              {PRESETS.map((p) => (
                <button
                  key={p.key}
                  type="button"
                  className={btn}
                  aria-pressed={preset === p.key}
                  data-testid={`range-${p.key}`}
                  onClick={() => {
                    setPreset(p.key);
                    setView(null);
                  }}
                >
                  {p.label}
                </button>
              ))}
            </div>
            <div role="group" aria-label="Zoom and pan" className="flex gap-1">
              <button
                type="button"
                className={btn}
                aria-label="Zoom in"
                data-testid="zoom-in"
                onClick={() => setView(zoomWindow(win, full, 0.5))}
              >
                +
              </button>
              <button
                type="button"
                className={btn}
                aria-label="Zoom out"
                onClick={() => setView(zoomWindow(win, full, 2))}
              >
                −
              </button>
              <button
                type="button"
                className={btn}
                aria-label="Back in time"
                data-testid="pan-back"
                onClick={() => setView(panWindow(win, full, -0.5))}
              >
                ◀
              </button>
              <button
                type="button"
                className={btn}
                aria-label="Forward in time"
                onClick={() => setView(panWindow(win, full, 0.5))}
              >
                ▶
              </button>
              <button
                type="button"
                className={btn}
                data-testid="zoom-reset"
                disabled={view === null}
                onClick={() => setView(null)}
              >
                Reset
              </button>
            </div>
          </div>
        }
      >
        {/* the chart (and its lazy chunks) only once the headline forecast is in: a disabled
            query is not "loading", so the chart would otherwise compete with it for the CPU */}
        {latestQ.isLoading || (history.isLoading && prices.isLoading) ? (
          <Loading what="chart" />
        ) : history.isError ? (
          <ErrorNote error={history.error} retry={() => void history.refetch()} />
        ) : (
          <Suspense fallback={<Loading what="chart" />}>
            <PriceChart
              prices={prices.data?.items ?? []}
              preds={shown}
              pricesMissing={pricesMissing}
              from={win[0]}
              to={win[1]}
              onZoom={(factor, at) => setView((v) => zoomWindow(v ?? full, full, factor, at))}
              onPan={(frac) => setView((v) => panWindow(v ?? full, full, frac))}
            />
          </Suspense>
        )}
      </Card>
      <div className="grid gap-4 lg:grid-cols-2">
        <LiveFeedPanel
          feed={feed}
          history={history.data?.items ?? []}
          filter={filter}
          onFilter={setFilter}
        />
        {track.isLoading ? (
          <Card title="Live track record">
            <Loading what="track record" />
          </Card>
        ) : track.isError ? (
          <Card title="Live track record">
            <ErrorNote error={track.error} retry={() => void track.refetch()} />
          </Card>
        ) : track.data ? (
          <Suspense
            fallback={
              <Card title="Live track record">
                <Loading what="track record" />
              </Card>
            }
          >
            <TrackRecordPanel tr={track.data} />
          </Suspense>
        ) : null}
      </div>
    </div>
  );
}
