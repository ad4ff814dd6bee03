// Models: every registered version with its aliases and role, live accuracy and log loss with
// 95% intervals per version and role, the newest shadow-vs-champion (or watch) paired test, the
// lifecycle timeline (triggers, gate decisions, promotions, rollbacks), and global feature
// importance per version. API: /models, /models/scores, /models/importance.
import { lazy, Suspense } from "react";
import { useImportance, useModels, useModelScores } from "../api/queries";
import type { Models as ModelsBody, VersionScore } from "../api/types";
import { Card, Dot, Empty, ErrorNote, Loading } from "../components/ui";
import { num, pct, utcDateTime } from "../lib/format";
import { comparison, importanceRows, ROLE_PILL, roleOf, verdictLevel } from "../lib/models";

const ImportanceChart = lazy(() =>
  import("../components/ImportanceChart").then((m) => ({ default: m.ImportanceChart })),
);

const interval = (ci: [number, number] | null | undefined, f: (v: number) => string) =>
  ci ? `[${f(ci[0])}, ${f(ci[1])}]` : "";

function ScoreCell({ s }: { s: VersionScore | undefined }) {
  if (!s) return <span className="text-slate-600 dark:text-slate-400">not served</span>;
  return (
    <span className="tabular">
      <span data-testid="score-accuracy">
        acc {pct(s.accuracy)} {interval(s.accuracy_ci, (v) => pct(v, 0))}
      </span>
      <br />
      <span data-testid="score-logloss">
        log loss {num(s.log_loss, 3)} {interval(s.log_loss_ci, (v) => num(v, 3))}
      </span>
      <br />
      <span className="text-xs text-slate-600 dark:text-slate-400">
        {s.resolved}/{s.served} resolved
      </span>
    </span>
  );
}

function Versions({ m, scores }: { m: ModelsBody; scores: VersionScore[] }) {
  const by = (v: string, role: string) => scores.find((s) => s.version === v && s.role === role);
  if (m.versions.length === 0) return <Empty>No version of {m.name} is registered yet.</Empty>;
  return (
    <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Registered versions">
      <table className="w-full text-left text-sm" data-testid="model-versions">
        <caption className="sr-only">Registered versions, newest first</caption>
        <thead>
          <tr className="border-b border-slate-300 dark:border-slate-700">
            {["version", "role", "aliases", "registered", "live as champion", "live in shadow"].map(
              (h) => (
                <th key={h} scope="col" className="px-2 py-1 whitespace-nowrap">
                  {h}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>
          {m.versions.map((v) => {
            const role = roleOf(v, m);
            return (
              <tr
                key={v.version}
                data-testid="model-version-row"
                data-role={role}
                className="border-b border-slate-200 align-top dark:border-slate-800"
              >
                <th scope="row" className="px-2 py-1.5 font-medium">
                  v{v.version}
                </th>
                <td className="px-2 py-1.5">
                  <span
                    className={`inline-block rounded-full px-2 py-0.5 text-xs font-semibold ${ROLE_PILL[role]}`}
                  >
                    {role}
                  </span>
                </td>
                <td className="px-2 py-1.5">{v.aliases.join(", ") || "–"}</td>
                <td className="px-2 py-1.5 whitespace-nowrap">{utcDateTime(v.created_at)}</td>
                <td className="px-2 py-1.5">
                  <ScoreCell s={by(v.version, "champion")} />
                </td>
                <td className="px-2 py-1.5">
                  <ScoreCell s={by(v.version, "shadow")} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function ComparisonCard({ m }: { m: ModelsBody }) {
  const c = comparison(m);
  return (
    <Card id="comparison" title="Shadow vs champion" testId="comparison">
      {!m.lifecycle.available ? (
        <ErrorNote error={`Lifecycle: ${m.lifecycle.error ?? "unavailable"}`} />
      ) : !c ? (
        <Empty>No paired comparison yet: no version has shadowed the champion long enough.</Empty>
      ) : (
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
          <dt className="text-slate-600 dark:text-slate-400">test</dt>
          <dd>
            {c.kind === "watch_verdict" ? "watch (new champion vs previous)" : "shadow"}: paired
            block bootstrap on the same resolved hours
          </dd>
          <dt className="text-slate-600 dark:text-slate-400">versions</dt>
          <dd>
            v{c.version ?? "?"} vs v{c.against ?? "?"}
            {c.n !== null ? ` · ${c.n} paired hours` : ""}
          </dd>
          <dt className="text-slate-600 dark:text-slate-400">verdict</dt>
          <dd data-testid="comparison-verdict">
            <Dot level={verdictLevel(c.decision)} label={c.decision ?? "–"} />
            {c.reason ? ` · ${c.reason}` : ""}
          </dd>
          <dt className="text-slate-600 dark:text-slate-400">p-value</dt>
          <dd className="tabular" data-testid="comparison-p">
            {num(c.pValue, 3)}
            {c.alpha !== null ? ` (α ${c.alpha})` : ""}
          </dd>
          {c.accuracyDiff !== null && (
            <>
              <dt className="text-slate-600 dark:text-slate-400">accuracy difference</dt>
              <dd className="tabular">{pct(c.accuracyDiff)}</dd>
            </>
          )}
          {c.loglossGain !== null && (
            <>
              <dt className="text-slate-600 dark:text-slate-400">log-loss gain</dt>
              <dd className="tabular">{num(c.loglossGain, 4)}</dd>
            </>
          )}
        </dl>
      )}
    </Card>
  );
}

const KIND_LABEL: Record<string, string> = {
  trigger: "trigger",
  suppressed: "trigger suppressed",
  retrain: "retrain",
  gate: "gate",
  shadow_start: "shadow start",
  shadow_verdict: "shadow verdict",
  promotion: "promotion",
  watch_verdict: "watch verdict",
  rollback: "rollback",
};

function Timeline({ m }: { m: ModelsBody }) {
  const events = [...(m.lifecycle.events ?? [])].reverse(); // newest first
  return (
    <Card id="timeline" title="Lifecycle timeline" testId="timeline">
      {!m.lifecycle.available ? (
        <ErrorNote error={`Lifecycle: ${m.lifecycle.error ?? "unavailable"}`} />
      ) : events.length === 0 ? (
        <Empty>No lifecycle event yet (triggers, gates, promotions, rollbacks appear here).</Empty>
      ) : (
        <ol className="grid gap-1 text-sm" aria-label="Lifecycle events, newest first">
          {events.map((e) => (
            <li
              key={e.event_id}
              data-testid="timeline-event"
              data-kind={e.kind}
              className="border-b border-slate-200 py-1 last:border-b-0 dark:border-slate-800"
            >
              <span className="font-medium">{KIND_LABEL[e.kind] ?? e.kind}</span>
              {e.trigger ? ` (${e.trigger})` : ""}
              {e.version ? ` · v${e.version}` : ""}
              {e.other_version ? ` vs v${e.other_version}` : ""}
              {e.decision ? ` · ${e.decision}` : ""}
              {e.p_value !== null ? ` · p ${num(e.p_value, 3)}` : ""}
              <span className="block text-xs text-slate-600 dark:text-slate-400">
                {utcDateTime(e.clock_ts)}
                {e.clock_ts !== e.at ? ` (recorded ${utcDateTime(e.at)})` : ""}
              </span>
            </li>
          ))}
        </ol>
      )}
    </Card>
  );
}

function ImportanceCard() {
  const imp = useImportance(10);
  const { features, rows } = importanceRows(imp.data?.items ?? []);
  return (
    <Card id="importance" title="Feature importance over versions (mean |SHAP|)">
      {imp.isLoading ? (
        <Loading what="importance" />
      ) : imp.isError ? (
        <ErrorNote error={imp.error} retry={() => void imp.refetch()} />
      ) : rows.length === 0 ? (
        <Empty>No version has logged its SHAP importance.</Empty>
      ) : (
        <>
          <Suspense fallback={<Loading what="chart" />}>
            <ImportanceChart features={features} rows={rows} />
          </Suspense>
          <div
            className="mt-2 overflow-x-auto"
            tabIndex={0}
            role="region"
            aria-label="Importance table"
          >
            <table className="w-full text-left text-xs" data-testid="importance-table">
              <caption className="sr-only">Mean |SHAP| per feature and version</caption>
              <thead>
                <tr className="border-b border-slate-300 dark:border-slate-700">
                  <th scope="col" className="px-2 py-1">
                    feature
                  </th>
                  {rows.map((r) => (
                    <th key={String(r.version)} scope="col" className="px-2 py-1">
                      {r.version}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody className="tabular">
                {features.map((f) => (
                  <tr key={f} className="border-b border-slate-200 dark:border-slate-800">
                    <th scope="row" className="px-2 py-1 text-left font-mono font-normal">
                      {f}
                    </th>
                    {rows.map((r) => (
                      <td key={String(r.version)} className="px-2 py-1">
                        {num(r[f], 4)}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </Card>
  );
}

export default function Models() {
  const models = useModels();
  const scores = useModelScores();
  const m = models.data;
  return (
    <div className="grid gap-4">
      <h1 className="sr-only">Models</h1>
      <Card
        id="versions"
        title={m ? `Registered versions of ${m.name}` : "Registered versions"}
        testId="versions"
        actions={
          m && (
            <span className="text-xs text-slate-600 dark:text-slate-400" data-testid="serving-now">
              serving v{m.serving.champion.version ?? "–"}
              {m.serving.shadow?.loaded ? ` · shadow v${m.serving.shadow.version}` : ""}
            </span>
          )
        }
      >
        {models.isLoading ? (
          <Loading what="models" />
        ) : models.isError || !m ? (
          <ErrorNote error={models.error} retry={() => void models.refetch()} />
        ) : (
          <>
            <Versions m={m} scores={scores.data?.items ?? []} />
            {scores.isError && (
              <p className="mt-2 text-xs text-slate-600 dark:text-slate-400">
                Live scores: {(scores.error as Error).message}
              </p>
            )}
            <p className="mt-2 text-xs text-slate-600 dark:text-slate-400">
              Live scores over resolved forecasts, with 95% intervals (accuracy: Wilson; log loss:
              mean ± 1.96·sd/√n).
            </p>
          </>
        )}
      </Card>
      {m && (
        <div className="grid gap-4 lg:grid-cols-2">
          <ComparisonCard m={m} />
          <Timeline m={m} />
        </div>
      )}
      <ImportanceCard />
    </div>
  );
}
