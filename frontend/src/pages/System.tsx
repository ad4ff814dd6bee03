// System: each component's health, data freshness, live serving metrics, and links to the
// Ray dashboard, MLflow and Grafana (URLs from config.json beside index.html).
import { ApiError } from "../api/client";
import {
  useDashboardConfig,
  useFreshness,
  useHealth,
  useLatest,
  useModel,
  useReady,
} from "../api/queries";
import { Card, Dot, Empty, ErrorNote, type Level, Loading } from "../components/ui";
import { useMetricsFeed } from "../hooks/useMetricsFeed";
import { useNow } from "../hooks/useNow";
import { ago, duration, num, utcHour } from "../lib/format";
import { DEFAULT_SYMBOL } from "../lib/symbol";

const LINKS = [
  { key: "ray_dashboard", label: "Ray dashboard", what: "cluster, Serve deployments, jobs" },
  { key: "mlflow", label: "MLflow", what: "runs, registered models, artifacts" },
  { key: "grafana", label: "Grafana", what: "serving and pipeline metrics" },
] as const;

function Row({
  name,
  level,
  status,
  detail,
}: {
  name: string;
  level: Level;
  status: string;
  detail?: string;
}) {
  return (
    <tr className="border-b border-slate-200 dark:border-slate-800">
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

const staleLevel = (age: number | null | undefined, warnS: number): Level =>
  age === null || age === undefined
    ? "idle"
    : age > 2 * warnS
      ? "bad"
      : age > warnS
        ? "warn"
        : "ok";

export default function System() {
  const health = useHealth();
  const ready = useReady();
  const model = useModel();
  const latest = useLatest(DEFAULT_SYMBOL);
  const fresh = useFreshness();
  const cfg = useDashboardConfig();
  const metrics = useMetricsFeed();
  const r = ready.data;
  const ex = model.data?.explainer as Record<string, unknown> | null | undefined;
  const now = useNow(1000);
  const latestAge = latest.data?.ts ? (now - Date.parse(latest.data.ts)) / 1000 : null;
  const dataEnd = model.data?.data_range?.[1];

  return (
    <div className="grid gap-4">
      <h1 className="sr-only">System</h1>
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
      <div className="grid gap-4 lg:grid-cols-2">
        <Card id="freshness" title="Data freshness">
          <table className="w-full text-sm" data-testid="freshness">
            <caption className="sr-only">Newest data per source</caption>
            <tbody>
              <Row
                name="Latest forecast"
                level={staleLevel(latestAge, 7200)}
                status={latest.data ? utcHour(latest.data.ts) : "none"}
                detail={latestAge !== null ? `${duration(latestAge)} old` : undefined}
              />
              {Object.entries(metrics.snapshot?.staleness_s ?? {}).map(([sym, s]) => (
                <Row
                  key={sym}
                  name={`Features used (${sym})`}
                  level={staleLevel(s, 7200)}
                  status={`${duration(s)} old`}
                  detail="age of the vector behind the last prediction"
                />
              ))}
              <Row
                name="Training data ends"
                level="idle"
                status={dataEnd ? utcHour(dataEnd) : "–"}
              />
              {fresh.data?.items.map((f) => (
                <Row
                  key={`${f.source}/${f.dataset}`}
                  name={`${f.source} · ${f.dataset}`}
                  level={staleLevel(f.age_s, 7200)}
                  status={f.latest ? utcHour(f.latest) : "no data"}
                  detail={f.age_s !== null ? `${duration(f.age_s)} old` : undefined}
                />
              ))}
            </tbody>
          </table>
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
