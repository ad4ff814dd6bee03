// Stale data never passes for live: the banner on every page while the newest forecast is stale,
// the live feed's mark on forecasts served from stale data, and the readiness card's live-data row.
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setApiBase } from "../src/api/client";
import type { Prediction } from "../src/api/types";
import App from "../src/App";
import { LiveFeedPanel } from "../src/components/LiveFeedPanel";
import type { LiveFeed } from "../src/hooks/useLiveFeed";
import { humanAge } from "../src/lib/format";
import { type ApiServer, startApi } from "./apiServer";
import { wrap } from "./harness";
import { prediction } from "./wsServer";

const YEAR = 365.25 * 86400;
let api: ApiServer;
beforeEach(async () => {
  api = await startApi();
  setApiBase(api.url);
  sessionStorage.clear();
});
afterEach(async () => {
  await api.close();
});

/** A forecast for an hour four years ago, served when its data was already that old. */
function fourYearsOld(): Prediction {
  return {
    ...prediction("2022-07-05T09:00:00+00:00", 0.466),
    stale: true,
    data_age_s: 4 * YEAR,
    stale_now: true,
    data_age_now_s: 4 * YEAR + 600,
    degraded: true,
  } as Prediction;
}

function feedOf(items: Prediction[]): LiveFeed {
  return {
    status: "open",
    attempt: 0,
    retryAt: null,
    paused: false,
    buffered: 0,
    lastMessageAt: Date.now(),
    lastError: null,
    items,
    heartbeatVersion: "3",
    pause: () => {},
    resume: () => {},
    retryNow: () => {},
  };
}

describe("stale-data banner", () => {
  it("is on every page while the newest forecast is stale, naming how old the data is", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/predictions/latest", () => ({ body: fourYearsOld() }));
    const user = userEvent.setup();
    wrap(<App />, "/analytics");
    const banner = await screen.findByTestId("stale-banner");
    expect(banner).toHaveTextContent("data is 4.0 years old — sources unreachable?");
    expect(banner).toHaveTextContent("forecast is for 2022-07-05 09:00 UTC");
    expect(banner).toHaveAttribute("role", "alert");
    for (const key of ["2", "4", "1"]) {
      await user.keyboard(key);
      expect(await screen.findByTestId("stale-banner")).toHaveTextContent("4.0 years old");
    }
  });

  it("is absent while the newest forecast is fresh, and when there is none yet", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/predictions/latest", () => ({
      body: prediction(new Date(Date.now() - 3600e3).toISOString(), 0.6),
    }));
    const first = wrap(<App />, "/analytics");
    await waitFor(() =>
      expect(api.requests.some((r) => r.path === "/predictions/latest")).toBe(true),
    );
    expect(screen.queryByTestId("stale-banner")).toBeNull();
    first.unmount();

    api.route("GET", "/predictions/latest", () => ({
      status: 404,
      body: { detail: "no prediction logged for BTCUSDT yet" },
    }));
    const n = api.requests.length;
    wrap(<App />, "/analytics");
    await waitFor(() =>
      expect(api.requests.slice(n).some((r) => r.path === "/predictions/latest")).toBe(true),
    );
    expect(screen.queryByTestId("stale-banner")).toBeNull();
  });

  it("follows the forecast once it goes stale (served fresh, old now: no new data arrives)", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/predictions/latest", () => ({
      body: {
        ...prediction("2026-01-01T09:00:00+00:00", 0.55),
        stale: false,
        data_age_s: 3600,
        stale_now: true,
        data_age_now_s: 5 * 3600,
      },
    }));
    wrap(<App />, "/system");
    expect(await screen.findByTestId("stale-banner")).toHaveTextContent(
      "data is 5.0 hours old — sources unreachable?",
    );
  });
});

describe("live feed", () => {
  it("marks forecasts served from stale data, and only those", () => {
    const stale = fourYearsOld();
    const fresh = prediction("2026-01-01T10:00:00+00:00", 0.61);
    render(<LiveFeedPanel feed={feedOf([fresh as Prediction, stale])} />);
    const items = screen.getAllByTestId("feed-item");
    expect(items.map((i) => i.getAttribute("data-stale"))).toEqual(["false", "true"]);
    const mark = within(items[1]).getByTestId("stale-mark");
    expect(mark).toHaveTextContent("stale data");
    expect(mark).toHaveAttribute("title", "served from data 4.0 years old: not a live forecast");
    expect(within(items[0]).queryByTestId("stale-mark")).toBeNull();
    expect(within(items[1]).queryByText("degraded")).toBeNull(); // one mark, the more telling one
  });
});

describe("health card", () => {
  it("says whether the forecasts are live data, with /ready's reason", async () => {
    api.route("GET", "/health", () => ({ body: { status: "ok" } }));
    api.route("GET", "/ready", () => ({
      status: 503,
      body: {
        ready: false,
        live_data: false,
        sources: "live",
        reason: "stale features: BTCUSDT as of 2022-07-05T09:00:00+00:00 is 4.2 years old",
        model_loaded: true,
        model_version: "3",
        redis: true,
        postgres: true,
        data: [],
        detail: {},
      },
    }));
    wrap(<App />, "/");
    const health = await screen.findByTestId("health-list");
    const row = await within(health).findByText("No live data");
    expect(row.closest("li")).toHaveAttribute(
      "title",
      "stale features: BTCUSDT as of 2022-07-05T09:00:00+00:00 is 4.2 years old",
    );
    expect(within(health).getByText("Not ready")).toBeInTheDocument();
  });
});

describe("humanAge", () => {
  it("says ages the way a person does", () => {
    expect(humanAge(4 * YEAR)).toBe("4.0 years");
    expect(humanAge(3 * 86400)).toBe("3.0 days");
    expect(humanAge(1.5 * 86400)).toBe("36.0 hours");
    expect(humanAge(5 * 3600)).toBe("5.0 hours");
    expect(humanAge(720)).toBe("12 minutes");
    expect(humanAge(null)).toBe("–");
  });
});
