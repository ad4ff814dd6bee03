// React Query hooks, one per API route the pages read. Retries: a 4xx is an answer (no retry),
// a network error or 5xx is retried with backoff, so a restarting server heals on its own.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useRefresh } from "../hooks/useRefresh";
import { ApiError, get, getStatic } from "./client";
import type {
  Alerts,
  Drift,
  Freshness,
  Importance,
  ModelInfo,
  Pipeline,
  PipelineRuns,
  Prediction,
  PredictionList,
  PriceSeries,
  Models,
  Ready,
  Report,
  TrackRecord,
  VersionScores,
} from "./types";

export function shouldRetry(failures: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failures < 3;
}

export const keys = {
  health: ["health"] as const,
  ready: ["ready"] as const,
  model: ["model"] as const,
  report: ["report"] as const,
  latest: (s: string) => ["predictions", "latest", s] as const,
  history: (s: string, since: string) => ["predictions", "history", s, since] as const,
  track: (s: string) => ["track-record", s] as const,
  prices: (s: string, hours: number) => ["prices", s, hours] as const,
  config: ["config"] as const,
  freshness: ["freshness"] as const,
  pipeline: ["pipeline"] as const,
  pipelineRuns: (job: string | null, limit: number) => ["pipeline", "runs", job, limit] as const,
  alerts: (limit: number) => ["alerts", limit] as const,
  models: ["models"] as const,
  modelScores: ["models", "scores"] as const,
  importance: (limit: number) => ["models", "importance", limit] as const,
  drift: ["drift"] as const,
};

/** Poll every `ms`, except once the route answered 404 (an API without it: asking again won't help). */
const pollUnless404 =
  (ms: number | false) =>
  (q: { state: { error: unknown } }): number | false =>
    q.state.error instanceof ApiError && q.state.error.status === 404 ? false : ms;

/** Polled liveness: drives the "API unreachable" banner. */
export const useHealth = () =>
  useQuery({
    queryKey: keys.health,
    queryFn: ({ signal }) => get<{ status: string }>("/health", undefined, signal),
    refetchInterval: (q) => (q.state.status === "error" ? 3000 : 10000),
    retry: false,
  });

/** /ready answers 503 with the same body when not ready: keep that body rather than an error. */
export const useReady = () =>
  useQuery({
    queryKey: keys.ready,
    queryFn: async ({ signal }) => {
      try {
        return await get<Ready>("/ready", undefined, signal);
      } catch (e) {
        if (e instanceof ApiError && e.status === 503 && e.body == null) throw e;
        if (e instanceof ApiError && e.status === 503) return readyFrom503(e);
        throw e;
      }
    },
    refetchInterval: useRefresh(15000),
  });

function readyFrom503(e: ApiError): Ready {
  // The whole answer, not `detail`: the ready body's own `detail` is only a part of it.
  const b = (typeof e.body === "object" && e.body !== null ? e.body : {}) as Partial<Ready>;
  return {
    ready: false,
    model_loaded: !!b.model_loaded,
    model_version: b.model_version ?? null,
    redis: !!b.redis,
    postgres: !!b.postgres,
    live_data: !!b.live_data,
    sources: b.sources ?? "live",
    reason: b.reason ?? null,
    data: b.data ?? [],
    detail: (b.detail as Record<string, unknown>) ?? {},
  };
}

export const useModel = () =>
  useQuery({
    queryKey: keys.model,
    queryFn: ({ signal }) => get<ModelInfo>("/model", undefined, signal),
    refetchInterval: 60000,
  });

export const useReport = () =>
  useQuery({
    queryKey: keys.report,
    queryFn: ({ signal }) => get<Report>("/report", undefined, signal),
    staleTime: 5 * 60000,
  });

/** The newest logged forecast's query (key and fetch): `useLatest`, and main.tsx's prefetch. */
export const latestQuery = (symbol: string) => ({
  queryKey: keys.latest(symbol),
  queryFn: ({ signal }: { signal: AbortSignal }) =>
    get<Prediction, "/predictions/latest">("/predictions/latest", { symbol }, signal),
});

/** The newest logged forecast; polled, so `stale_now` (the stale-data banner) follows the clock. */
export const useLatest = (symbol: string, enabled = true) =>
  useQuery({
    ...latestQuery(symbol),
    enabled,
    retry: shouldRetry,
    refetchInterval: useRefresh(60000),
  });

/** Forecasts logged since `since` (ISO), oldest first, up to the API's page limit. */
export const useHistory = (symbol: string, since: string, enabled = true) =>
  useQuery({
    queryKey: keys.history(symbol, since),
    enabled,
    placeholderData: keepPreviousData,
    queryFn: ({ signal }) =>
      get<PredictionList, "/predictions">("/predictions", { symbol, since, limit: 1000 }, signal),
    refetchInterval: useRefresh(60000),
  });

export const useTrackRecord = (symbol: string) =>
  useQuery({
    queryKey: keys.track(symbol),
    queryFn: ({ signal }) => get<TrackRecord, "/track-record">("/track-record", { symbol }, signal),
    refetchInterval: useRefresh(60000),
  });

/** Hourly closes for the price chart (the newest `hours` candles in the store). */
export const usePrices = (symbol: string, hours: number, enabled = true) =>
  useQuery({
    queryKey: keys.prices(symbol, hours),
    retry: shouldRetry,
    enabled,
    queryFn: ({ signal }) => get<PriceSeries, "/prices">("/prices", { symbol, hours }, signal),
  });

export interface DashboardConfig {
  /** Base URLs of the tools (no trailing slash needed). */
  links?: Partial<Record<"ray_dashboard" | "mlflow" | "grafana", string>>;
  /** Grafana dashboard uids by role (deploy/grafana); missing ones fall back to lib/grafana's. */
  grafana_dashboards?: Partial<Record<"model" | "serving" | "data" | "pipeline", string>>;
}
export const useDashboardConfig = () =>
  useQuery({
    queryKey: keys.config,
    queryFn: () => getStatic<DashboardConfig>("config.json"),
    staleTime: Infinity,
  });

/** Newest data per source and dataset. */
export const useFreshness = () =>
  useQuery({
    queryKey: keys.freshness,
    retry: shouldRetry,
    refetchInterval: useRefresh(60000),
    queryFn: ({ signal }) => get<Freshness, "/freshness">("/freshness", undefined, signal),
  });

/** The scheduler's jobs (next slot, last run, last success and its age on the system clock). */
export const usePipeline = () =>
  useQuery({
    queryKey: keys.pipeline,
    retry: shouldRetry,
    refetchInterval: pollUnless404(useRefresh(10000)),
    queryFn: ({ signal }) => get<Pipeline, "/pipeline">("/pipeline", undefined, signal),
  });

/** The scheduler's run history, newest first (all jobs, or one `job`). */
export const usePipelineRuns = (job?: string, limit = 20, enabled = true) =>
  useQuery({
    queryKey: keys.pipelineRuns(job ?? null, limit),
    enabled,
    retry: shouldRetry,
    placeholderData: keepPreviousData,
    refetchInterval: pollUnless404(useRefresh(10000)),
    queryFn: ({ signal }) =>
      get<PipelineRuns, "/pipeline/runs">("/pipeline/runs", { job, limit }, signal),
  });

/**
 * The alert feed (GET /alerts): firing alerts, most severe first, and the newest `limit` of any
 * status. One query for the header badge and the System page (same key: one request per poll).
 */
export const useAlerts = (limit = 50) =>
  useQuery({
    queryKey: keys.alerts(limit),
    retry: shouldRetry,
    refetchInterval: pollUnless404(useRefresh(15000)),
    queryFn: ({ signal }) => get<Alerts, "/alerts">("/alerts", { limit }, signal),
  });

/** The registered versions, aliases, what is served and the lifecycle (GET /models). */
export const useModels = () =>
  useQuery({
    queryKey: keys.models,
    retry: shouldRetry,
    refetchInterval: useRefresh(30000),
    queryFn: ({ signal }) => get<Models, "/models">("/models", undefined, signal),
  });

/** Live accuracy and log loss with 95% intervals per version and role. */
export const useModelScores = () =>
  useQuery({
    queryKey: keys.modelScores,
    retry: shouldRetry,
    refetchInterval: useRefresh(60000),
    queryFn: ({ signal }) =>
      get<VersionScores, "/models/scores">("/models/scores", undefined, signal),
  });

/** Global SHAP importance of the newest `limit` versions (each version's training run). */
export const useImportance = (limit = 10) =>
  useQuery({
    queryKey: keys.importance(limit),
    retry: shouldRetry,
    staleTime: 5 * 60000,
    queryFn: ({ signal }) =>
      get<Importance, "/models/importance">("/models/importance", { limit }, signal),
  });

/** PSI per feature from the newest drift check (GET /drift). */
export const useDrift = () =>
  useQuery({
    queryKey: keys.drift,
    retry: shouldRetry,
    refetchInterval: pollUnless404(useRefresh(60000)),
    queryFn: ({ signal }) => get<Drift, "/drift">("/drift", undefined, signal),
  });
