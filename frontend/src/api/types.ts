// Names for the generated OpenAPI schema types (schema.d.ts is generated; never edit it by hand).
import type { components, paths } from "./schema";

type S = components["schemas"];
export type Prediction = S["Prediction"];
export type PredictionList = S["PredictionList"];
export type PredictRequest = S["PredictRequest"];
export type Explanation = S["Explanation"];
export type Factor = S["Factor"];
export type ModelInfo = S["ModelInfo"];
export type Ready = S["Ready"];
export type Health = S["Health"];
export type Report = S["Report"];
export type TrackRecord = S["TrackRecord"];
export type ErrorBody = S["ErrorBody"];
export type PricePoint = S["PricePoint"];
export type PriceSeries = S["PriceSeries"];
export type SourceFreshness = S["SourceFreshness"];
export type Freshness = S["Freshness"];
export type ClockInfo = S["ClockInfo"];
export type Pipeline = S["Pipeline"];
export type PipelineJob = S["PipelineJob"];
export type PipelineRun = S["PipelineRun"];
export type PipelineRuns = S["PipelineRuns"];
export type RunStatus = PipelineRun["status"];
export type Alert = S["Alert"];
export type Alerts = S["Alerts"];
export type AlertCounts = S["AlertCounts"];
export type AlertSeverity = Alert["severity"];
export type Models = S["Models"];
export type RegisteredVersion = S["RegisteredVersion"];
export type ModelEvent = S["ModelEvent"];
export type VersionScore = S["VersionScore"];
export type VersionScores = S["VersionScores"];
export type VersionImportance = S["VersionImportance"];
export type Importance = S["Importance"];
export type Drift = S["Drift"];
export type SymbolDrift = S["SymbolDrift"];

export type ApiPath = keyof paths;
/** Query parameters of a GET route, straight from the OpenAPI document. */
export type QueryOf<P extends ApiPath> = paths[P] extends {
  get: { parameters: { query?: infer Q } };
}
  ? NonNullable<Q>
  : never;

/** A FastAPI validation error item (`detail` of a 422). */
export interface ValidationItem {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

/** One component's health as /ws/system pushes it (rayapp/serving/system_ws.py). */
export interface SystemComponent {
  name: string;
  ok: boolean;
  status: string;
  detail: string | null;
}
export interface SystemSnapshot {
  components: SystemComponent[];
  pipeline: Pipeline | null;
  pipeline_error: string | null;
}

/** One message of /ws/predictions, /ws/metrics or /ws/system (rayapp/serving/ws.py, system_ws.py). */
export type WsMessage =
  | { type: "system"; seq: number; ts: number; data: SystemSnapshot }
  | { type: "prediction"; seq: number; data: Prediction; replay?: boolean }
  | { type: "heartbeat"; seq: number; ts: number; model_version?: string | null }
  | { type: "metrics"; seq: number; ts: number; data: MetricsSnapshot }
  | { type: "pong"; seq: number; ts: number };

export interface MetricsSnapshot {
  requests: Record<string, { count: number; errors: number; mean_latency_ms?: number }>;
  predictions: number;
  ws_clients: Record<string, number>;
  staleness_s: Record<string, number>;
  model?: Record<string, string>;
}
