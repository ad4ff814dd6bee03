// A small typed fetch wrapper. Same origin by default: the Serve ingress serves this app and the
// API together (the Vite dev server proxies), so there is no CORS and no base URL to configure.
import type { ApiPath, QueryOf, ValidationItem } from "./types";

let API_BASE: string = (import.meta.env.VITE_API_BASE as string | undefined) ?? "";

/** Point the client at another origin (tests; a dashboard hosted apart from the API). */
export function setApiBase(base: string): void {
  API_BASE = base.replace(/\/$/, "");
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: unknown,
    readonly path: string,
    /** the whole answer (a 503 from /ready is a Ready body whose `detail` is only a part) */
    readonly body: unknown = detail,
  ) {
    super(describe(status, detail, path));
    this.name = "ApiError";
  }
  /** FastAPI validation items when the server answered 422 with a list. */
  get validation(): ValidationItem[] {
    return Array.isArray(this.detail) ? (this.detail as ValidationItem[]) : [];
  }
}

/** The server could not be reached at all (down, network error): the banner's case. */
export class NetworkError extends Error {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(
      `cannot reach the API (${path}): ${cause instanceof Error ? cause.message : String(cause)}`,
    );
    this.name = "NetworkError";
  }
}

function describe(status: number, detail: unknown, path: string): string {
  if (typeof detail === "string") return `${path}: HTTP ${status}: ${detail}`;
  if (Array.isArray(detail))
    return `${path}: HTTP ${status}: ${detail.map((d: ValidationItem) => `${d.loc?.join(".")}: ${d.msg}`).join("; ")}`;
  return `${path}: HTTP ${status}`;
}

export function url(path: string, query?: Record<string, unknown>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {}))
    if (v !== undefined && v !== null) qs.set(k, String(v));
  const q = qs.toString();
  return `${API_BASE}${path}${q ? `?${q}` : ""}`;
}

export function wsUrl(path: string, query?: Record<string, unknown>): string {
  const base = API_BASE || window.location.origin;
  return url(path, query).replace(/^\//, `${base}/`).replace(/^http/, "ws");
}

async function send<T>(path: string, init: RequestInit, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      ...init,
      signal,
      headers: { Accept: "application/json", ...init.headers },
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new NetworkError(path, e);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  if (!res.ok) {
    const detail =
      body && typeof body === "object" && "detail" in body
        ? (body as { detail: unknown }).detail
        : body;
    throw new ApiError(res.status, detail, path.split("?")[0], body);
  }
  return body as T;
}

/** GET a documented route; the query's type comes from the OpenAPI document. */
export function get<T, P extends ApiPath = ApiPath>(
  path: P | string,
  query?: QueryOf<P> | Record<string, unknown>,
  signal?: AbortSignal,
): Promise<T> {
  return send<T>(url(path, query as Record<string, unknown>), { method: "GET" }, signal);
}

export function post<T>(
  path: ApiPath,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  return send<T>(url(path), {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** GET a static file next to index.html (e.g. config.json); null when absent. */
export async function getStatic<T>(name: string): Promise<T | null> {
  try {
    const res = await fetch(`${import.meta.env.BASE_URL}${name}`, { cache: "no-cache" });
    return res.ok ? ((await res.json()) as T) : null;
  } catch {
    return null;
  }
}
