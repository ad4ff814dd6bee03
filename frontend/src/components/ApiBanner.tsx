// The "API unreachable" banner: shown while /health fails, with the retry countdown and a button.
import { useQueryClient } from "@tanstack/react-query";
import { useHealth } from "../api/queries";

export function ApiBanner() {
  const health = useHealth();
  const qc = useQueryClient();
  if (!health.isError) return null;
  return (
    <div
      role="alert"
      data-testid="api-down"
      className="border-b border-red-300 bg-red-50 px-4 py-2 text-sm text-red-900 dark:border-red-800 dark:bg-red-950 dark:text-red-100"
    >
      <strong>API unreachable.</strong>{" "}
      {health.error instanceof Error ? health.error.message : "no answer"}. Retrying every 3 s; data
      shown may be stale.
      <button
        type="button"
        className="ml-3 rounded border border-red-400 px-2 py-0.5 font-medium"
        onClick={() => void qc.invalidateQueries()}
      >
        Retry now
      </button>
    </div>
  );
}
