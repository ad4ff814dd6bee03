// The track record's interval coverage: live against nominal per level, as the API gives it.
import { render, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { TrackRecord } from "../src/api/types";
import { coverageText, CoverageTable } from "../src/components/TrackRecordPanel";

const level = (lv: number, covered: number, resolved: number, methods = ["cqr_vol_aci"]) => ({
  level: lv,
  resolved,
  covered,
  coverage: covered / resolved,
  coverage_ci95: [covered / resolved - 0.05, Math.min(1, covered / resolved + 0.05)],
  methods,
});

describe("interval coverage", () => {
  it("says each level's live coverage against nominal over the resolved forecasts", () => {
    const cov = [level(0.5, 74, 150), level(0.8, 121, 150), level(0.9, 133, 150)];
    expect(coverageText(cov[2])).toBe("90 % nominal: 88.7% live over 150 resolved");
    const { getAllByTestId, getByRole } = render(
      <CoverageTable coverage={cov as TrackRecord["coverage"] & object} />,
    );
    expect(getByRole("table", { name: /Interval coverage, live against nominal/ })).toBeTruthy();
    const rows = getAllByTestId("coverage-row");
    expect(rows.map((r) => r.getAttribute("aria-label"))).toEqual([
      "50 % nominal: 49.3% live over 150 resolved",
      "80 % nominal: 80.7% live over 150 resolved",
      "90 % nominal: 88.7% live over 150 resolved",
    ]);
    expect(within(rows[2]).getByText("88.7%")).toBeTruthy();
    expect(within(rows[2]).getByText("CQR + ACI")).toBeTruthy();
  });

  it("labels the legacy band and waits for a first resolved forecast", () => {
    const { getByText, rerender } = render(
      <CoverageTable coverage={[level(0.9, 9, 10, ["constant_conformal_legacy"])]} />,
    );
    expect(getByText("legacy constant band")).toBeTruthy();
    rerender(<CoverageTable coverage={[]} />);
    expect(getByText(/appears once a forecast with intervals has resolved/)).toBeTruthy();
  });
});
