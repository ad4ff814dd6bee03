// The API routes the Vite dev server proxies, derived from the serving API's OpenAPI document
// (src/api/openapi.json, rewritten by `npm run gen:api`), so a new route needs no edit here.

export interface OpenApiDoc {
  paths: Record<string, unknown>;
}

export interface ProxyRoutes {
  /** path prefixes proxied as HTTP */
  http: string[];
  /** path prefixes proxied as WebSockets */
  ws: string[];
}

/** Served by FastAPI beside the API but not listed among its paths. */
export const EXTRA_HTTP_ROUTES = ["/openapi.json", "/docs"];
/** WebSocket routes are not in OpenAPI: the prefix all of them share. */
export const DEFAULT_WS_ROUTES = ["/ws"];

/** "/predictions/{prediction_id}" → "/predictions"; null for "/" (that is the dashboard). */
export function firstSegment(path: string): string | null {
  const seg = path.split("/")[1] ?? "";
  return seg ? `/${seg}` : null;
}

/** Each path's first segment, once, plus the extras; "/ws..." prefixes go to the WebSocket list. */
export function proxyRoutes(doc: OpenApiDoc): ProxyRoutes {
  const prefixes = new Set<string>();
  for (const p of Object.keys(doc.paths)) {
    const s = firstSegment(p);
    if (s) prefixes.add(s);
  }
  const ws: string[] = [...prefixes].filter((r) => r === "/ws");
  const http = [...new Set([...prefixes, ...EXTRA_HTTP_ROUTES])].filter((r) => !ws.includes(r));
  return { http: http.sort(), ws: ws.length ? ws : [...DEFAULT_WS_ROUTES] };
}
