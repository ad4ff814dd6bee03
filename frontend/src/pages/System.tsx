// System: active alerts, each component's health, the scheduler's jobs, data freshness, live
// serving metrics, and links to the Ray dashboard, MLflow and Grafana's dashboards (URLs from
// config.json beside index.html). Ages are on the system clock the API reports (/freshness,
// /pipeline): wall time normally, the replay server's market clock during an offline demo, so a
// replayed 2021 is not "1611 d old". Alerts are Alertmanager's, on wall time: their ages are the
// browser's.
import { lazy, type ReactNode, Suspense, useState } from "react";
import { ApiError } from "../api/client";
import {
  useAlerts,
  useDashboardConfig,
  useDrift,
  useFreshness,
  useHealth,
  useLatest,
  useModel,
  usePipeline,
  usePipelineRuns,
  useReady,
} from "../api/queries";
import type { Alert, Pipeline } from "../api/types";
import { btn, Card, Dot, Empty, ErrorNote, type Level, Loading } from "../components/ui";
import { useMetricsFeed } from "../hooks/useMetricsFeed";
import { useSystemFeed } from "../hooks/useSystemFeed";
import { useNow } from "../hooks/useNow";
import { alertSummary, isWebUrl, recentlyResolved, resolvedAt, SEVERITY_PILL } from "../lib/alerts";
import { type ClockReading, clockElapsedS, clockNow, speedLabel } from "../lib/clock";
import { ago, duration, num, utcHour } from "../lib/format";
import { grafanaLinks } from "../lib/grafana";
import { FRESH_WARN_S, jobState, runLevel, staleLevel, statusText, truncate } from "../lib/health";
import { DEFAULT_SYMBOL } from "../lib/symbol";

const DriftChart = lazy(() =>
  import("../components/DriftChart").then((m) => ({ default: m.DriftChart })),
);

/** GET /drift: PSI per feature from the newest drift check, thresholds, drifted ones marked. */
function DriftCard() {
  const drift = useDrift();
  const d = drift.data;
  const missing = drift.error instanceof ApiError && drift.error.status === 404;
  return (
    <Card id="drift" title="Data drift (PSI per feature)" testId="drift-card">
      {drift.isLoading ? (
        <Loading what="drift" />
      ) : drift.isError ? (
        missing ? (
          <ErrorNote error="Drift: not exposed by this API version (/drift)." />
        ) : (
          <ErrorNote error={drift.error} retry={() => void drift.refetch()} />
        )
      ) : !d || !d.checked_at || d.symbols.length === 0 ? (
        <Empty>
          <span data-testid="drift-empty">
            No drift check yet: the scheduler&apos;s drift job compares served vectors with the
            champion&apos;s training window.
          </span>
        </Empty>
      ) : (
        <>
          <p className="mb-2 text-xs text-slate-600 dark:text-slate-400">
            Checked {utcHour(d.checked_at)} against v{d.model_version} over {d.hours} h · warn above{" "}
            {d.warn}, drifted above {d.alert} (⚠)
          </p>
          {d.symbols.map((sym) => (
            <div key={sym.symbol} className="mb-3">
              <h3 className="mb-1 text-xs font-semibold text-slate-700 uppercase dark:text-slate-300">
                {sym.symbol}: {sym.drifted.length} of {sym.features.length} features drifted
                {sym.drifted.length ? ` (${sym.drifted.join(", ")})` : ""}
              </h3>
              <Suspense fallback={<Loading what="chart" />}>
                <DriftChart sym={sym} warn={d.warn} alert={d.alert} />
              </Suspense>
            </div>
          ))}
        </>
      )}
    </Card>
  );
}

const LINKS = [
  { key: "ray_dashboard", label: "Ray dashboard", what: "cluster, Serve deployments, jobs" },
  { key: "mlflow", label: "MLflow", what: "runs, registered models, artifacts" },
  { key: "grafana", label: "Grafana", what: "model, serving, data and pipeline dashboards" },
] as const;

function Row({
  name,
  level,
  status,
  detail,
  testId,
}: {
  name: string;
  level: Level;
  status: string;
  detail?: ReactNode;
  testId?: string;
}) {
  return (
    <tr className="border-b border-slate-200 dark:border-slate-800" data-testid={testId}>
      <th scope="row" className="px-2 py-1.5 text-left font-medium">
        {name}
      </th>
      <td className="px-2 py-1.5">
        <Dot level={level} label={status} />
      </td>
      <td className="px-2 py-1.5 text-slate-600 dark:text-slate-400">{detail ?? ""}</td>
    </tr>
  );
}

/** A flat, readable rendering of a small info value (numbers rounded, objects as k v pairs). */
function brief(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
  if (v && typeof v === "object")
    return Object.entries(v)
      .map(([k, x]) => `${k} ${brief(x)}`)
      .join(", ");
  return String(v);
}

const reading = (checkedAt: string, speed: number, fetchedAt: number): ClockReading => ({
  checkedAt,
  speed,
  fetchedAt,
});

const isoOf = (ms: number): string | null =>
  Number.isFinite(ms) ? new Date(ms).toISOString() : null;

/** The scheduler and one row per job: status dot by the age of its last success (lib/health). */
function PipelineTable({ data, clock, now }: { data: Pipeline; clock: ClockReading; now: number }) {
  const hb = data.scheduler.heartbeat_at;
  const market = data.clock.kind === "market";
  return (
    <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Scheduled jobs">
      <table className="w-full text-sm" data-testid="pipeline">
        <caption className="sr-only">Scheduler and its jobs</caption>
        <tbody>
          <Row
            name="Scheduler"
            testId="pipeline-scheduler"
            level={data.scheduler.alive ? "ok" : "bad"}
            status={data.scheduler.alive ? "running" : "not running"}
            detail={[
              // heartbeats are wall time (the process is alive now, whatever the clock says)
              hb ? `heartbeat ${ago(Date.parse(hb), now)}` : "no heartbeat yet",
              market ? `market clock (replay, ${speedLabel(data.clock.speed)})` : "wall clock",
            ].join(" · ")}
          />
          {data.jobs.map((j) => {
            const age =
              j.last_success_age_s === null
                ? null
                : j.last_success_age_s + clockElapsedS(clock, now);
            const { level, status } = jobState(j, age, data.clock.speed);
            const r = j.last_run;
            const parts = [`next ${j.next_slot ? utcHour(j.next_slot) : "–"}`];
            if (r)
              parts.push(
                `last #${r.run_id} ${statusText(r.status)} (attempt ${r.attempt}/${r.max_attempts}` +
                  (r.status === "retrying" && r.retry_at ? `, retry ${utcHour(r.retry_at)}` : "") +
                  ")",
              );
            parts.push(age === null ? "no success yet" : `success ${duration(age)} ago`);
            const err = r && r.status !== "succeeded" ? r.error : null;
            return (
              <Row
                key={j.job}
                testId="pipeline-job"
                name={j.job}
                level={level}
                status={status}
                detail={
                  <>
                    {parts.join(" · ")}
                    {err && (
                      <span
                        className="block font-mono text-xs break-all text-red-800 dark:text-red-300"
                        title={err}
                      >
                        {truncate(err)}
                      </span>
                    )}
                  </>
                }
              />
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The run history (GET /pipeline/runs), fetched only once it is shown. */
function RecentRuns() {
  const [open, setOpen] = useState(false);
  const runs = usePipelineRuns(undefined, 20, open);
  const items = runs.data?.items ?? [];
  return (
    <div className="mt-3">
      <button
        type="button"
        className={btn}
        aria-expanded={open}
        aria-controls="pipeline-runs-panel"
        onClick={() => setOpen((o) => !o)}
      >
        {open ? "Hide recent runs" : "Show recent runs"}
      </button>
      {open && (
        <div id="pipeline-runs-panel" className="mt-2">
          {runs.isLoading ? (
            <Loading what="runs" />
          ) : runs.isError ? (
            <ErrorNote error={runs.error} retry={() => void runs.refetch()} />
          ) : items.length === 0 ? (
            <Empty>No runs recorded yet.</Empty>
          ) : (
            <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Recent runs">
              <table className="w-full text-left text-sm" data-testid="pipeline-runs">
                <caption className="sr-only">Recent pipeline runs, newest first</caption>
                <thead>
                  <tr className="border-b border-slate-300 dark:border-slate-700">
                    {["run", "job", "slot", "status", "attempt", "rows r/w/q", "took", "error"].map(
                      (h) => (
                        <th key={h} scope="col" className="px-2 py-1 whitespace-nowrap">
                          {h}
                        </th>
                      ),
                    )}
                  </tr>
                </thead>
                <tbody className="tabular">
                  {items.map((r) => {
                    const took =
                      r.started_at && r.finished_at
                        ? (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000
                        : null;
                    return (
                      <tr
                        key={r.run_id}
                        className="border-b border-slate-200 dark:border-slate-800"
                      >
                        <th scope="row" className="px-2 py-1 text-left font-medium">
                          #{r.run_id}
                        </th>
                        <td className="px-2 py-1">{r.job}</td>
                        <td className="px-2 py-1 whitespace-nowrap">
                          {utcHour(r.slot)}
                          {r.trigger === "manual" ? " (manual)" : ""}
                        </td>
                        <td className="px-2 py-1 whitespace-nowrap">
                          <Dot level={runLevel(r.status)} label={statusText(r.status)} />
                        </td>
                        <td className="px-2 py-1">
                          {r.attempt}/{r.max_attempts}
                        </td>
                        <td className="px-2 py-1 whitespace-nowrap">
                          {r.rows_read}/{r.rows_written}/{r.rows_quarantined}
                        </td>
                        <td className="px-2 py-1 whitespace-nowrap">{duration(took)}</td>
                        <td
                          className="px-2 py-1 font-mono text-xs text-slate-600 dark:text-slate-400"
                          title={r.error ?? undefined}
                        >
                          {r.error ? truncate(r.error, 80) : ""}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </div>
  );
}

const ALERT_LINK = "text-blue-700 underline dark:text-blue-300";

function SeverityPill({ severity }: { severity: Alert["severity"] }) {
  return (
    <span
      data-severity={severity}
      className={`inline-block rounded-full px-2 py-0.5 text-xs font-semibold uppercase ${SEVERITY_PILL[severity]}`}
    >
      {severity}
    </span>
  );
}

function Runbook({ runbook }: { runbook: string | null }) {
  if (!runbook) return null;
  return (
    <>
      runbook{" "}
      {isWebUrl(runbook) ? (
        <a className={ALERT_LINK} href={runbook} target="_blank" rel="noreferrer">
          {runbook} ↗
        </a>
      ) : (
        <code className="rounded bg-slate-100 px-1 font-mono break-all dark:bg-slate-800">
          {runbook}
        </code>
      )}
    </>
  );
}

/** One firing alert: severity, name, summary, area, start (wall time), stale flag, runbook. */
function AlertRow({ a, now }: { a: Alert; now: number }) {
  const meta: ReactNode[] = [];
  if (a.area) meta.push(`area ${a.area}`);
  meta.push(`started ${utcHour(a.starts_at)} (${ago(Date.parse(a.starts_at), now)})`);
  if (a.runbook) meta.push(<Runbook runbook={a.runbook} />);
  if (isWebUrl(a.generator_url))
    meta.push(
      <a className={ALERT_LINK} href={a.generator_url} target="_blank" rel="noreferrer">
        source ↗
      </a>,
    );
  return (
    <li
      data-testid="alert-row"
      data-severity={a.severity}
      className="border-b border-slate-200 py-2 last:border-b-0 dark:border-slate-800"
    >
      <div className="flex flex-wrap items-center gap-2">
        <SeverityPill severity={a.severity} />
        <span className="font-medium">{a.alertname}</span>
        {a.stale && (
          <span
            data-testid="alert-stale"
            title={`not repeated by Alertmanager since ${utcHour(a.received_at)}: it may have resolved unseen`}
            className="rounded border border-amber-500 px-1.5 text-xs text-amber-800 dark:text-amber-300"
          >
            stale
          </span>
        )}
      </div>
      {a.summary && <p className="mt-0.5 text-sm">{a.summary}</p>}
      <p className="mt-0.5 text-xs text-slate-600 dark:text-slate-400">
        {meta.map((m, i) => (
          <span key={i}>
            {i > 0 && " · "}
            {m}
          </span>
        ))}
      </p>
    </li>
  );
}

/** GET /alerts: the firing alerts, then the recently resolved ones (newest first, up to 10). */
function AlertsCard({ now }: { now: number }) {
  const alerts = useAlerts();
  const missing = alerts.error instanceof ApiError && alerts.error.status === 404;
  const { total } = alertSummary(alerts.data?.counts);
  const counts = alerts.data?.counts;
  const active = alerts.data?.active ?? [];
  const resolved = recentlyResolved(alerts.data?.recent ?? [], 10);
  return (
    <Card
      id="alerts"
      title="Alerts"
      testId="alerts-card"
      actions={
        counts && (
          <span className="text-xs text-slate-600 dark:text-slate-400" data-testid="alert-counts">
            firing: {counts.high} high · {counts.medium} medium · {counts.info} info
          </span>
        )
      }
    >
      {alerts.isLoading ? (
        <Loading what="alerts" />
      ) : alerts.isError && !alerts.data ? (
        missing ? (
          <ErrorNote error="Alerts: not exposed by this API version (/alerts)." />
        ) : (
          <ErrorNote error={alerts.error} retry={() => void alerts.refetch()} />
        )
      ) : (
        <>
          {alerts.isError && <ErrorNote error={alerts.error} retry={() => void alerts.refetch()} />}
          {active.length === 0 ? (
            <Empty>No active alerts</Empty>
          ) : (
            <>
              <ul aria-label="Active alerts, most severe first">
                {active.map((a) => (
                  <AlertRow key={`${a.fingerprint}/${a.starts_at}`} a={a} now={now} />
                ))}
              </ul>
              {total > active.length && (
                <p className="mt-1 text-xs text-slate-600 dark:text-slate-400">
                  Showing {active.length} of {total} firing alerts.
                </p>
              )}
            </>
          )}
          <h3 className="mt-3 mb-1 text-xs font-semibold text-slate-700 uppercase dark:text-slate-300">
            Recently resolved
          </h3>
          {resolved.length === 0 ? (
            <p className="text-xs text-slate-600 dark:text-slate-400">None recently.</p>
          ) : (
            <ul className="text-sm" aria-label="Recently resolved alerts, newest first">
              {resolved.map((a) => {
                const lasted = (Date.parse(resolvedAt(a)) - Date.parse(a.starts_at)) / 1000;
                return (
                  <li
                    key={`${a.fingerprint}/${a.starts_at}`}
                    data-testid="alert-resolved"
                    className="flex flex-wrap items-center gap-x-2 py-0.5"
                  >
                    <SeverityPill severity={a.severity} />
                    <span className="font-medium">{a.alertname}</span>
                    <span className="text-xs text-slate-600 dark:text-slate-400">
                      resolved {ago(Date.parse(resolvedAt(a)), now)} · lasted {duration(lasted)}
                      {a.summary ? ` · ${a.summary}` : ""}
                    </span>
                  </li>
                );
              })}
            </ul>
          )}
        </>
      )}
    </Card>
  );
}

export default function System() {
  const health = useHealth();
  const ready = useReady();
  const model = useModel();
  const latest = useLatest(DEFAULT_SYMBOL);
  const fresh = useFreshness();
  const pipe = usePipeline();
  const cfg = useDashboardConfig();
  const metrics = useMetricsFeed();
  const system = useSystemFeed();
  const r = ready.data;
  const ex = model.data?.explainer as Record<string, unknown> | null | undefined;
  const now = useNow(1000);
  // The system clock: /freshness's (an older API sends no clock: its checked_at is the server's
  // wall time, speed 1), else /pipeline's, else the browser's own wall clock.
  const freshClock = fresh.data
    ? reading(fresh.data.checked_at, fresh.data.clock?.speed ?? 1, fresh.dataUpdatedAt)
    : null;
  // the scheduler's jobs: pushed over /ws/system when that is newer than the last poll
  const pushed = system.snapshot?.pipeline;
  const usePushed = !!pushed && !!system.at && system.at > pipe.dataUpdatedAt;
  const pipeData = usePushed ? pushed : pipe.data;
  const pipeClock = pipeData
    ? reading(
        pipeData.checked_at,
        pipeData.clock.speed,
        usePushed ? (system.at ?? pipe.dataUpdatedAt) : pipe.dataUpdatedAt,
      )
    : null;
  const clockInfo = fresh.data?.clock ?? pipe.data?.clock ?? null;
  const sysClock = (fresh.data?.clock ? freshClock : null) ?? pipeClock ?? freshClock;
  const sysNow = sysClock ? clockNow(sysClock, now) : now;
  const latestAge = latest.data?.ts ? (sysNow - Date.parse(latest.data.ts)) / 1000 : null;
  const dataEnd = model.data?.data_range?.[1];
  const pipeMissing = pipe.error instanceof ApiError && pipe.error.status === 404;
  const grafana = grafanaLinks(cfg.data);

  return (
    <div className="grid gap-4">
      <h1 className="sr-only">System</h1>
      <AlertsCard now={now} />
      <Card id="components" title="Components">
        {ready.isLoading ? (
          <Loading what="health" />
        ) : (
          <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Component health">
            <table className="w-full text-sm" data-testid="components">
              <caption className="sr-only">Component health</caption>
              <tbody>
                <Row
                  name="API (ingress)"
                  level={health.isSuccess ? "ok" : "bad"}
                  status={health.isSuccess ? "up" : "unreachable"}
                  detail={health.isError ? (health.error as Error).message : undefined}
                />
                <Row
                  name="Readiness"
                  level={r?.ready ? "ok" : "bad"}
                  status={r?.ready ? "ready" : "not ready"}
                />
                <Row
                  name="Predictor (model)"
                  level={r?.model_loaded ? "ok" : "bad"}
                  status={r?.model_loaded ? `v${r.model_version}` : "no model"}
                  detail={
                    model.data?.last_error ??
                    (model.data ? `swaps: ${model.data.swaps}` : undefined)
                  }
                />
                <Row
                  name="Explainer"
                  level={ex && !("error" in ex) ? "ok" : ex ? "bad" : "idle"}
                  status={ex ? ("error" in ex ? String(ex.error) : "ready") : "unknown"}
                  detail={
                    ex && !("error" in ex)
                      ? Object.entries(ex)
                          .map(([k, v]) => `${k}: ${brief(v)}`)
                          .join(" · ")
                      : undefined
                  }
                />
                <Row
                  name="Online store (Redis)"
                  level={r?.redis ? "ok" : "bad"}
                  status={r?.redis ? "up" : "down"}
                />
                <Row
                  name="Warehouse (PostgreSQL)"
                  level={r?.postgres ? "ok" : "bad"}
                  status={r?.postgres ? "up" : "down"}
                />
                <Row
                  name="System channel (/ws/system)"
                  testId="system-channel"
                  level={system.state?.status === "open" ? "ok" : "warn"}
                  status={system.state?.status ?? "connecting"}
                  detail={
                    system.snapshot
                      ? system.snapshot.components
                          .map((c) => `${c.name} ${c.ok ? c.status : `${c.status} ✗`}`)
                          .join(" · ") + (system.at ? ` (pushed ${ago(system.at, now)})` : "")
                      : undefined
                  }
                />
                <Row
                  name="Metrics channel (/ws/metrics)"
                  level={metrics.state?.status === "open" ? "ok" : "warn"}
                  status={metrics.state?.status ?? "connecting"}
                  detail={metrics.at ? `last push ${ago(metrics.at)}` : undefined}
                />
              </tbody>
            </table>
          </div>
        )}
        {ready.isError && <ErrorNote error={ready.error} retry={() => void ready.refetch()} />}
      </Card>
      <Card id="pipeline" title="Pipeline">
        {pipe.isLoading ? (
          <Loading what="pipeline" />
        ) : pipe.isError ? (
          pipeMissing ? (
            <ErrorNote error="Scheduled jobs: not exposed by this API version (/pipeline)." />
          ) : (
            <ErrorNote error={pipe.error} retry={() => void pipe.refetch()} />
          )
        ) : pipeData && pipeClock && pipeData.jobs.length > 0 ? (
          <>
            <PipelineTable data={pipeData} clock={pipeClock} now={now} />
            <RecentRuns />
          </>
        ) : (
          <p
            className="py-4 text-sm text-slate-600 dark:text-slate-400"
            data-testid="pipeline-empty"
          >
            No scheduler has run yet:{" "}
            <code className="rounded bg-slate-100 px-1 font-mono dark:bg-slate-800">
              rayapp run
            </code>{" "}
            starts one.
          </p>
        )}
      </Card>
      <DriftCard />
      <div className="grid gap-4 lg:grid-cols-2">
        <Card id="freshness" title="Data freshness">
          <table className="w-full text-sm" data-testid="freshness">
            <caption className="sr-only">Newest data per source</caption>
            <tbody>
              <Row
                name="Latest forecast"
                level={staleLevel(latestAge, FRESH_WARN_S)}
                status={latest.data ? utcHour(latest.data.ts) : "none"}
                detail={latestAge !== null ? `${duration(latestAge)} old` : undefined}
              />
              {Object.entries(metrics.snapshot?.staleness_s ?? {}).map(([sym, s]) => (
                <Row
                  key={sym}
                  name={`Features used (${sym})`}
                  level={staleLevel(s, FRESH_WARN_S)}
                  status={`${duration(s)} old`}
                  detail="age of the vector behind the last prediction"
                />
              ))}
              <Row
                name="Training data ends"
                level="idle"
                status={dataEnd ? utcHour(dataEnd) : "–"}
              />
              {fresh.data?.items.map((f) => {
                // the API's age, on its clock, advanced by the clock time since it answered
                const age =
                  f.age_s === null || !freshClock ? null : f.age_s + clockElapsedS(freshClock, now);
                return (
                  <Row
                    key={`${f.source}/${f.dataset}`}
                    name={`${f.source} · ${f.dataset}`}
                    level={staleLevel(age, FRESH_WARN_S)}
                    status={f.latest ? utcHour(f.latest) : "no data"}
                    detail={age !== null ? `${duration(age)} old` : undefined}
                  />
                );
              })}
            </tbody>
          </table>
          {clockInfo?.kind === "market" && (
            <p className="mt-2 text-xs text-slate-600 dark:text-slate-400" data-testid="clock-note">
              Ages in market time (replay clock, {speedLabel(clockInfo.speed)}): now{" "}
              {utcHour(isoOf(sysNow))}.
            </p>
          )}
          {fresh.isError && (
            <p className="mt-2 text-xs text-slate-600 dark:text-slate-400">
              Per-source freshness:{" "}
              {fresh.error instanceof ApiError && fresh.error.status === 404
                ? "not exposed by this API version (/freshness)."
                : (fresh.error as Error).message}
            </p>
          )}
        </Card>
        <Card id="serving" title="Serving (live)">
          {!metrics.snapshot ? (
            <Loading what="metrics" />
          ) : (
            <div
              className="overflow-x-auto"
              tabIndex={0}
              role="region"
              aria-label="Serving metrics"
            >
              <p className="mb-2 text-sm">
                Predictions served:{" "}
                <strong className="tabular">{metrics.snapshot.predictions}</strong> · WebSocket
                clients:{" "}
                {Object.entries(metrics.snapshot.ws_clients)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(", ")}
              </p>
              {Object.keys(metrics.snapshot.requests).length === 0 ? (
                <Empty>No requests yet.</Empty>
              ) : (
                <table className="w-full text-left text-sm">
                  <caption className="sr-only">Requests by route</caption>
                  <thead>
                    <tr className="border-b border-slate-300 dark:border-slate-700">
                      <th scope="col" className="px-2 py-1">
                        route
                      </th>
                      <th scope="col" className="px-2 py-1">
                        count
                      </th>
                      <th scope="col" className="px-2 py-1">
                        5xx
                      </th>
                      <th scope="col" className="px-2 py-1">
                        mean ms
                      </th>
                    </tr>
                  </thead>
                  <tbody className="tabular">
                    {Object.entries(metrics.snapshot.requests).map(([k, v]) => (
                      <tr key={k} className="border-b border-slate-200 dark:border-slate-800">
                        <td className="px-2 py-1 font-mono text-xs">{k}</td>
                        <td className="px-2 py-1">{v.count}</td>
                        <td className="px-2 py-1">{v.errors}</td>
                        <td className="px-2 py-1">{num(v.mean_latency_ms, 1)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          )}
        </Card>
      </div>
      <Card id="links" title="Tools">
        <ul className="grid gap-2 sm:grid-cols-3" data-testid="links">
          {LINKS.map((l) => {
            const href = cfg.data?.links?.[l.key];
            if (l.key === "grafana" && grafana.length > 0)
              return (
                <li
                  key={l.key}
                  className="rounded-lg border border-slate-200 p-3 dark:border-slate-800"
                  data-testid="grafana-links"
                >
                  <span className="font-medium">{l.label}</span>
                  <ul className="my-0.5 flex flex-wrap gap-x-3 gap-y-0.5 text-sm">
                    {grafana.map((g) => (
                      <li key={g.key}>
                        <a
                          className="font-medium text-blue-700 underline dark:text-blue-300"
                          href={g.href}
                          title={`Grafana dashboard ${g.uid}`}
                          target="_blank"
                          rel="noreferrer"
                        >
                          {g.label} ↗
                        </a>
                      </li>
                    ))}
                  </ul>
                  <div className="text-xs text-slate-600 dark:text-slate-400">
                    {href} · {l.what}
                  </div>
                </li>
              );
            return (
              <li
                key={l.key}
                className="rounded-lg border border-slate-200 p-3 dark:border-slate-800"
              >
                {href ? (
                  <a
                    className="font-medium text-blue-700 underline dark:text-blue-300"
                    href={href}
                    target="_blank"
                    rel="noreferrer"
                  >
                    {l.label} ↗
                  </a>
                ) : (
                  <span className="font-medium">{l.label}</span>
                )}
                <div className="text-xs text-slate-600 dark:text-slate-400">
                  {href ?? "not configured"} · {l.what}
                </div>
              </li>
            );
          })}
        </ul>
      </Card>
    </div>
  );
}
