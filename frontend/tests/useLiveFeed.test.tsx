// The live-feed hook against a real local WebSocket server: ordering, dedup, seq, pause/resume,
// reconnect with backoff and resume-from, and the UI's connection state.
import { act, render, renderHook, screen, waitFor } from "@testing-library/react";
import { WebSocket as WsClient } from "ws";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LiveFeedPanel } from "../src/components/LiveFeedPanel";
import { mergePrediction, useLiveFeed } from "../src/hooks/useLiveFeed";
import { backoffDelay, DEFAULT_BACKOFF } from "../src/lib/liveSocket";
import { type FakeServer, prediction, startServer } from "./wsServer";

let srv: FakeServer;
beforeEach(async () => {
  srv = await startServer();
});
afterEach(async () => {
  await srv.close();
});

const Impl = WsClient as unknown as typeof WebSocket;
const fast = { initialMs: 40, maxMs: 200, factor: 2, jitter: 0 };
const hook = () =>
  renderHook(() =>
    useLiveFeed({
      url: (since) =>
        `${srv.url}/ws/predictions${since ? `?since=${encodeURIComponent(since)}` : ""}`,
      WebSocketImpl: Impl,
      backoff: fast,
    }),
  );

describe("useLiveFeed", () => {
  it("orders by feature hour, newest first, and deduplicates by prediction id", async () => {
    const { result } = hook();
    await waitFor(() => expect(result.current.status).toBe("open"));
    const a = prediction("2026-01-01T10:00:00+00:00", 0.7);
    const b = prediction("2026-01-01T12:00:00+00:00", 0.4);
    const c = prediction("2026-01-01T11:00:00+00:00", 0.55);
    srv.send({ type: "prediction", data: a });
    srv.send({ type: "prediction", data: b });
    srv.send({ type: "prediction", data: c }); // arrives late: still slotted by ts
    srv.send({ type: "prediction", data: { ...a, p_up: 0.71 } }); // same id: replaced
    await waitFor(() => expect(result.current.items.map((p) => p.ts)).toEqual([b.ts, c.ts, a.ts]));
    expect(result.current.items[2].p_up).toBe(0.71);
  });

  it("drops a message whose seq is not above the last one of this connection", async () => {
    const { result } = hook();
    await waitFor(() => expect(result.current.status).toBe("open"));
    srv.send({ type: "prediction", seq: 3, data: prediction("2026-01-01T10:00:00+00:00") });
    srv.send({ type: "prediction", seq: 3, data: prediction("2026-01-01T11:00:00+00:00") });
    srv.send({ type: "prediction", seq: 2, data: prediction("2026-01-01T12:00:00+00:00") });
    srv.send({ type: "heartbeat", seq: 4, ts: 1, model_version: "4" });
    await waitFor(() => expect(result.current.heartbeatVersion).toBe("4"));
    expect(result.current.items.map((p) => p.ts)).toEqual(["2026-01-01T10:00:00+00:00"]);
  });

  it("ignores a message that is not JSON and keeps going", async () => {
    const { result } = hook();
    await waitFor(() => expect(result.current.status).toBe("open"));
    srv.send("not json {");
    srv.send({ type: "prediction", data: prediction("2026-01-01T10:00:00+00:00") });
    await waitFor(() => expect(result.current.items).toHaveLength(1));
    expect(result.current.lastError).toMatch(/not JSON/);
  });

  it("pause buffers without losing messages; resume delivers them in order", async () => {
    const { result } = hook();
    await waitFor(() => expect(result.current.status).toBe("open"));
    act(() => result.current.pause());
    srv.send({ type: "prediction", data: prediction("2026-01-01T10:00:00+00:00") });
    srv.send({ type: "prediction", data: prediction("2026-01-01T11:00:00+00:00") });
    await waitFor(() => expect(result.current.buffered).toBe(2));
    expect(result.current.items).toHaveLength(0);
    expect(result.current.paused).toBe(true);
    act(() => result.current.resume());
    expect(result.current.items.map((p) => p.ts)).toEqual([
      "2026-01-01T11:00:00+00:00",
      "2026-01-01T10:00:00+00:00",
    ]);
    expect(result.current.buffered).toBe(0);
  });

  it("reconnects with growing backoff and resumes from the newest forecast it has", async () => {
    const { result } = hook();
    await srv.waitForConnections(1);
    await waitFor(() => expect(result.current.status).toBe("open"));
    srv.send({ type: "prediction", data: prediction("2026-01-01T10:00:00+00:00") });
    await waitFor(() => expect(result.current.items).toHaveLength(1));
    expect(srv.connections[0].url).toBe("/ws/predictions");

    srv.refuse(true); // the next two attempts are closed at once
    srv.dropAll();
    await waitFor(() => expect(result.current.status).toBe("reconnecting"));
    await waitFor(() => expect(result.current.attempt).toBeGreaterThanOrEqual(2), {
      timeout: 3000,
    });
    srv.refuse(false);
    await srv.waitForConnections(2, 5000);
    await waitFor(() => expect(result.current.status).toBe("open"));
    expect(result.current.attempt).toBe(0);
    expect(decodeURIComponent(srv.connections[1].url)).toBe(
      "/ws/predictions?since=2026-01-01T10:00:00+00:00",
    );
    // seq restarts per connection: the new socket's seq 2 is accepted after the old one's 2
    srv.send({ type: "prediction", data: prediction("2026-01-01T11:00:00+00:00") });
    await waitFor(() => expect(result.current.items).toHaveLength(2));
  });

  it("stops for good when the server refuses the request as a policy violation (1008)", async () => {
    const { result } = hook();
    await srv.waitForConnections(1);
    srv.connections[0].socket.close(1008, "unknown symbol");
    await waitFor(() => expect(result.current.status).toBe("closed"));
    expect(result.current.lastError).toMatch(/unknown symbol/);
    await new Promise((r) => setTimeout(r, 300));
    expect(srv.connections).toHaveLength(1);
  });

  it("closes its socket on unmount", async () => {
    const { result, unmount } = hook();
    await waitFor(() => expect(result.current.status).toBe("open"));
    unmount();
    await waitFor(() => expect(srv.connections[0].socket.readyState).toBe(WsClient.CLOSED));
  });
});

describe("LiveFeedPanel", () => {
  function Panel() {
    const feed = useLiveFeed({
      url: () => `${srv.url}/ws/predictions`,
      WebSocketImpl: Impl,
      backoff: fast,
    });
    return <LiveFeedPanel feed={feed} />;
  }

  it("shows the connection state, the items and a working pause button", async () => {
    render(<Panel />);
    await waitFor(() => expect(screen.getByTestId("ws-state")).toHaveTextContent("Live"));
    srv.send({ type: "prediction", data: prediction("2026-01-01T10:00:00+00:00", 0.62) });
    expect(await screen.findByText("P(up) 62.0%")).toBeInTheDocument();
    act(() => screen.getByRole("button", { name: "Pause" }).click());
    expect(screen.getByTestId("ws-state")).toHaveTextContent("Paused");
    srv.send({ type: "prediction", data: prediction("2026-01-01T11:00:00+00:00", 0.3) });
    await waitFor(() =>
      expect(screen.getByTestId("ws-state")).toHaveTextContent("Paused (1 waiting)"),
    );
    act(() => screen.getByRole("button", { name: "Resume" }).click());
    expect(await screen.findByText("P(up) 30.0%")).toBeInTheDocument();
    srv.dropAll();
    await waitFor(() => expect(screen.getByTestId("ws-state")).toHaveTextContent(/Reconnecting/));
  });
});

describe("mergePrediction", () => {
  it("caps the list at max items, keeping the newest", () => {
    let items: ReturnType<typeof prediction>[] = [];
    for (let h = 0; h < 5; h++)
      items = mergePrediction(
        items as never,
        prediction(`2026-01-01T0${h}:00:00+00:00`) as never,
        3,
      ) as never;
    expect(items.map((p) => p.ts.slice(11, 13))).toEqual(["04", "03", "02"]);
  });
});

describe("backoffDelay", () => {
  it("grows by the factor up to the cap, with bounded jitter", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, fast))).toEqual([40, 80, 160, 200, 200]);
    const b = { ...DEFAULT_BACKOFF, jitter: 0.2 };
    expect(backoffDelay(1, b, () => 0)).toBe(400);
    expect(backoffDelay(1, b, () => 1)).toBe(500);
    expect(backoffDelay(99, b, () => 1)).toBe(b.maxMs);
  });
});
