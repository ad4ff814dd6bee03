// The "stale data" banner, on every page: shown while the newest forecast's data is older than
// serving.feature_staleness_s (`stale_now`, judged by the server on its clock: wall time, or the
// market clock during a replay). Old data must never pass for a live forecast.
import { useLocation } from "react-router-dom";
import { useLatest } from "../api/queries";
import type { Prediction } from "../api/types";
import { humanAge, utcDateTime } from "../lib/format";
import { currentSymbol } from "../lib/symbol";

/** Whether the newest forecast is stale now (an API that does not say it: as served). */
export const staleNow = (p: Prediction | undefined): boolean =>
  !!p && (p.stale_now ?? p.stale ?? false);

export function StaleBanner() {
  const symbol = currentSymbol(useLocation().search);
  const latest = useLatest(symbol);
  const p = latest.data;
  if (!p || !staleNow(p)) return null;
  const age = p.data_age_now_s ?? p.data_age_s;
  return (
    <div
      role="alert"
      data-testid="stale-banner"
      className="border-b border-amber-400 bg-amber-50 px-4 py-2 text-sm text-amber-950 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-100"
    >
      <strong>Stale data: data is {humanAge(age)} old — sources unreachable?</strong> The newest{" "}
      {symbol} forecast is for {utcDateTime(p.as_of ?? p.ts)}: it is not a live forecast. See System
      for each source&apos;s newest data.
    </div>
  );
}
