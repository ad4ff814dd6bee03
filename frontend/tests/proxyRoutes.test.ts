import { describe, expect, it } from "vitest";
import openapi from "../src/api/openapi.json";
import { firstSegment, proxyRoutes } from "../src/lib/proxyRoutes";

const covered = (path: string, prefixes: string[]) =>
  prefixes.some((r) => path === r || path.startsWith(`${r}/`));

describe("dev-server proxy routes", () => {
  const routes = proxyRoutes(openapi);

  it("covers every path of the API's OpenAPI document", () => {
    const paths = Object.keys(openapi.paths);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(covered(p, routes.http), p).toBe(true);
  });

  it("holds the known routes once each, the docs, and the WebSocket prefix", () => {
    expect(routes.http).toEqual(expect.arrayContaining(["/health", "/predictions", "/prices"]));
    expect(routes.http).toEqual(expect.arrayContaining(["/openapi.json", "/docs"]));
    expect(new Set(routes.http).size).toBe(routes.http.length);
    expect(routes.ws).toEqual(["/ws"]);
    expect(routes.http).not.toContain("/ws");
  });

  it("takes the first segment of each path", () => {
    expect(firstSegment("/predictions/{prediction_id}")).toBe("/predictions");
    expect(firstSegment("/health")).toBe("/health");
    expect(firstSegment("/")).toBeNull();
    expect(proxyRoutes({ paths: { "/a/{id}": {}, "/a": {}, "/ws/x": {}, "/": {} } })).toEqual({
      http: ["/a", "/docs", "/openapi.json"],
      ws: ["/ws"],
    });
  });
});
