// The price chart drawn (jsdom has no layout: the chart's box is given a size), counting what
// Recharts puts on the P(up) axis.
import { render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Prediction } from "../src/api/types";
import { PriceChart } from "../src/components/PriceChart";
import { prediction } from "./wsServer";

const H = 3600e3;
const T = Date.parse("2026-01-08T10:00:00Z");
const prices = Array.from({ length: 168 }, (_, i) => ({
  ts: new Date(T - (167 - i) * H).toISOString(),
  close: 40000 + i,
}));

// only the chart's own box has a size (a legend as tall as the chart would leave no plot area)
const box = (w: number, h: number) =>
  ({
    width: w,
    height: h,
    top: 0,
    left: 0,
    right: w,
    bottom: h,
    x: 0,
    y: 0,
    toJSON: () => ({}),
  }) as DOMRect;
beforeEach(() => {
  vi.spyOn(HTMLElement.prototype, "getBoundingClientRect").mockImplementation(function (
    this: HTMLElement,
  ) {
    return this.classList.contains("recharts-responsive-container") ? box(800, 320) : box(0, 0);
  });
});
afterEach(() => vi.restoreAllMocks());

const symbols = (c: HTMLElement) => c.querySelectorAll(".recharts-scatter-symbol").length;

describe("PriceChart", () => {
  it("draws one marker for one forecast, not a row of them across the week", async () => {
    const one = [prediction(new Date(T).toISOString(), 0.62)] as Prediction[];
    const { container, findByTestId } = render(
      <PriceChart prices={prices} preds={one} from={T - 7 * 24 * H} to={T + 2 * H} />,
    );
    await findByTestId("price-chart");
    await vi.waitFor(() => expect(container.querySelector(".recharts-line")).not.toBeNull());
    // before the fix the empty "down call" series fell back to the chart's 168 price rows and
    // drew a flat line of markers at 100 %
    expect(symbols(container)).toBe(1);
  });

  it("draws one marker per forecast, up and down", async () => {
    const preds = [
      prediction(new Date(T - 2 * H).toISOString(), 0.3),
      prediction(new Date(T - H).toISOString(), 0.7),
      prediction(new Date(T).toISOString(), 0.6),
    ] as Prediction[];
    const { container } = render(
      <PriceChart prices={prices} preds={preds} from={T - 7 * 24 * H} to={T + 2 * H} />,
    );
    await vi.waitFor(() => expect(symbols(container)).toBe(3));
  });

  it("draws the fan of each forecast (50/80/90 %) with a legend, and a legacy band labelled", async () => {
    const preds = [
      prediction(new Date(T - 2 * H).toISOString(), 0.3),
      prediction(new Date(T - H).toISOString(), 0.7),
    ] as Prediction[];
    const legacy = {
      ...prediction(new Date(T).toISOString(), 0.6),
      intervals: [],
      quantiles: null,
      volatility: null,
    } as unknown as Prediction;
    legacy.interval = { ...legacy.interval, method: "constant_conformal_legacy" };
    const { container, findByTestId, getByText } = render(
      <PriceChart
        prices={prices}
        preds={[...preds, legacy]}
        from={T - 7 * 24 * H}
        to={T + 2 * H}
      />,
    );
    const fig = await findByTestId("price-chart");
    expect(fig.getAttribute("data-fans")).toBe("2");
    expect(fig.getAttribute("data-legacy-bands")).toBe("1");
    expect(fig.getAttribute("aria-label")).toContain("2 forecast fans (50, 80 and 90 % intervals");
    await vi.waitFor(() => {
      for (const level of [50, 80, 90])
        expect(container.querySelector(`.fan-${level} .recharts-area-area`)).not.toBeNull();
      expect(container.querySelector(".legacy-band .recharts-area-area")).not.toBeNull();
    });
    for (const name of ["90 % interval", "80 % interval", "50 % interval"])
      expect(getByText(name)).toBeTruthy();
    expect(getByText("legacy band (90 %), constant width")).toBeTruthy();
  });
});
