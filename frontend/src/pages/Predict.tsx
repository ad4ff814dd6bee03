// Predict: ask for a forecast from the latest stored features of a symbol, or from an explicit
// feature vector (a what-if, not logged). Validation runs as you type; the API's own 422 field
// errors are shown beside the fields too.
import { useMutation } from "@tanstack/react-query";
import { type FormEvent, useMemo, useRef, useState } from "react";
import { ApiError, post } from "../api/client";
import { useLatest, useModel } from "../api/queries";
import type { Prediction, PredictRequest } from "../api/types";
import { ShapChart } from "../components/ShapChart";
import { btn, btnPrimary, Card, ErrorNote, input, Stat } from "../components/ui";
import { useShortcuts } from "../hooks/useShortcuts";
import { logRetPct, pct, utcHour } from "../lib/format";
import { DEFAULT_SYMBOL } from "../lib/symbol";
import { symbolError, validateVector } from "../lib/validation";

const KEY_STORE = "rayapp.apiKey";
type Mode = "symbol" | "vector";

function loadKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORE) ?? "";
  } catch {
    return "";
  }
}

export default function Predict() {
  const model = useModel();
  const names = useMemo(() => model.data?.feature_names ?? [], [model.data]);
  const [mode, setMode] = useState<Mode>("symbol");
  const [symbol, setSymbol] = useState(DEFAULT_SYMBOL);
  const [apiKey, setApiKey] = useState(loadKey);
  const [raw, setRaw] = useState<Record<string, string>>({});
  const [touched, setTouched] = useState<Record<string, boolean>>({});
  // the "fix the fields" summary speaks only after a submit was refused, never on an empty form
  const [refused, setRefused] = useState(false);
  const latest = useLatest(symbol, symbolError(symbol) === null);
  const first = useRef<HTMLInputElement>(null);
  useShortcuts({ "/": () => first.current?.focus() });

  const symErr = symbolError(symbol);
  const vec = validateVector(mode === "vector" ? names : [], raw);
  const keyErr = apiKey.trim() ? null : "The API key is required to call /predict.";
  const invalid =
    !!symErr ||
    !!keyErr ||
    (mode === "vector" && (Object.keys(vec.errors).length > 0 || names.length === 0));

  const fieldsToFix = [
    ...(symErr ? ["symbol"] : []),
    ...(keyErr ? ["API key"] : []),
    ...(mode === "vector" ? names.filter((n) => vec.errors[n]) : []),
    ...(mode === "vector" && (vec.errors._form || names.length === 0) ? ["features"] : []),
  ];

  const predict = useMutation({
    mutationFn: (body: PredictRequest) =>
      post<Prediction>("/predict", body, { "X-API-Key": apiKey.trim() }),
  });
  const serverErrors: Record<string, string> = {};
  if (predict.error instanceof ApiError) {
    for (const v of predict.error.validation) serverErrors[String(v.loc[v.loc.length - 1])] = v.msg;
  }

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(
      Object.fromEntries([["symbol", true], ["key", true], ...names.map((n) => [n, true])]),
    );
    setRefused(invalid);
    if (invalid) return;
    try {
      sessionStorage.setItem(KEY_STORE, apiKey.trim());
    } catch {
      /* ignore */
    }
    predict.mutate({
      // validated above (SYMBOL_RE; the API answers 422 for a symbol it does not serve)
      symbol: symbol as PredictRequest["symbol"],
      explain: true,
      ...(mode === "vector" ? { features: vec.values as PredictRequest["features"] } : {}),
    });
  };

  const fillFromLatest = () => {
    const f = latest.data?.features ?? {};
    setRaw(
      Object.fromEntries(
        names.map((n) => [n, f[n] === null || f[n] === undefined ? "" : String(f[n])]),
      ),
    );
  };

  const err = (field: string, local: string | null | undefined) =>
    touched[field] || raw[field] !== undefined || field === "symbol"
      ? (local ?? serverErrors[field])
      : serverErrors[field];

  return (
    <div className="grid gap-4 lg:grid-cols-[minmax(0,1fr)_minmax(0,1fr)]">
      <h1 className="sr-only">Predict</h1>
      <Card id="predict-form" title="Ask for a forecast">
        <form
          onSubmit={submit}
          noValidate
          aria-describedby="predict-help"
          className="grid gap-4"
          data-testid="predict-form"
        >
          <p id="predict-help" className="text-sm text-slate-600 dark:text-slate-400">
            Latest features of a symbol (logged like the live forecasts), or your own feature vector
            (a what-if; not logged).
          </p>
          <fieldset className="flex flex-wrap gap-4 text-sm">
            <legend className="sr-only">Input</legend>
            {(["symbol", "vector"] as const).map((m) => (
              <label key={m} className="inline-flex items-center gap-2">
                <input
                  type="radio"
                  name="mode"
                  value={m}
                  checked={mode === m}
                  onChange={() => setMode(m)}
                />
                {m === "symbol" ? "Latest features for a symbol" : "Explicit feature vector"}
              </label>
            ))}
          </fieldset>
          <Field id="symbol" label="Symbol" error={err("symbol", symErr)}>
            <input
              ref={first}
              id="symbol"
              className={input}
              value={symbol}
              autoComplete="off"
              spellCheck={false}
              aria-invalid={!!err("symbol", symErr)}
              aria-describedby="symbol-err"
              onChange={(e) => setSymbol(e.target.value.toUpperCase().trim())}
            />
          </Field>
          <Field id="api-key" label="API key (X-API-Key)" error={touched.key ? keyErr : null}>
            <input
              id="api-key"
              type="password"
              className={input}
              value={apiKey}
              autoComplete="off"
              aria-invalid={!!(touched.key && keyErr)}
              aria-describedby="api-key-err"
              onChange={(e) => setApiKey(e.target.value)}
              onBlur={() => setTouched((t) => ({ ...t, key: true }))}
            />
          </Field>
          {mode === "vector" && (
            <fieldset className="grid gap-2">
              <legend className="mb-1 flex w-full items-center justify-between text-sm font-medium">
                <span>Features ({names.length}; empty = missing)</span>
              </legend>
              <div>
                <button
                  type="button"
                  className={btn}
                  onClick={fillFromLatest}
                  disabled={!latest.data}
                >
                  Fill from the latest forecast
                </button>
              </div>
              {names.length === 0 && (
                <p className="text-sm">No model loaded: its feature list is unknown.</p>
              )}
              {vec.errors._form && (
                <p role="alert" className="text-sm text-red-700 dark:text-red-300">
                  {vec.errors._form}
                </p>
              )}
              <div className="grid grid-cols-1 gap-2 sm:grid-cols-2">
                {names.map((n) => (
                  <Field key={n} id={`f-${n}`} label={n} error={err(n, vec.errors[n])} small>
                    <input
                      id={`f-${n}`}
                      className={input}
                      inputMode="decimal"
                      value={raw[n] ?? ""}
                      aria-invalid={!!err(n, vec.errors[n])}
                      aria-describedby={`f-${n}-err`}
                      onChange={(e) => setRaw((r) => ({ ...r, [n]: e.target.value }))}
                    />
                  </Field>
                ))}
              </div>
            </fieldset>
          )}
          <div className="flex items-center gap-3">
            <button
              type="submit"
              className={btnPrimary}
              disabled={predict.isPending}
              data-testid="predict-submit"
            >
              {predict.isPending ? "Predicting…" : "Predict"}
            </button>
            {refused && invalid && (
              <span role="alert" className="text-sm text-red-700 dark:text-red-300">
                Fix the highlighted fields: {fieldsToFix.join(", ")}.
              </span>
            )}
          </div>
          {predict.isError && <ErrorNote error={predict.error} />}
        </form>
      </Card>
      {predict.data ? (
        <ResultCard p={predict.data} />
      ) : (
        <Card title="Result">
          <p className="text-sm text-slate-600 dark:text-slate-400">
            Submit the form to see the forecast and why.
          </p>
        </Card>
      )}
    </div>
  );
}

function Field({
  id,
  label,
  error,
  children,
  small,
}: {
  id: string;
  label: string;
  error?: string | null;
  children: React.ReactNode;
  small?: boolean;
}) {
  return (
    <div className="grid gap-1">
      <label htmlFor={id} className={`${small ? "font-mono text-xs" : "text-sm font-medium"}`}>
        {label}
      </label>
      {children}
      <span
        id={`${id}-err`}
        className="min-h-4 text-xs text-red-700 dark:text-red-300"
        aria-live="polite"
      >
        {error ?? ""}
      </span>
    </div>
  );
}

export function ResultCard({ p }: { p: Prediction }) {
  const iv = p.interval;
  const level = iv.level ? `${Math.round(iv.level * 100)} % ` : "";
  return (
    <Card id="result" title="Result">
      <div data-testid="predict-result" className="grid gap-4">
        <div className="grid grid-cols-2 gap-3 sm:grid-cols-3">
          <Stat
            testId="result-pup"
            label="P(up)"
            value={pct(p.p_up)}
            sub={p.direction === 1 ? "▲ up" : "▼ down"}
          />
          <Stat
            label="Expected return"
            value={logRetPct(p.expected_return)}
            sub={`over ${p.horizon_h}h`}
          />
          <Stat
            testId="result-interval"
            label={`${level}interval`}
            value={
              <span className="text-base">
                {logRetPct(iv.low)} … {logRetPct(iv.high)}
              </span>
            }
            sub={
              iv.method === "constant_conformal_legacy"
                ? "legacy constant band"
                : iv.coverage === null || iv.coverage === undefined
                  ? "live coverage: none resolved yet"
                  : `live coverage ${pct(iv.coverage)} over ${iv.resolved ?? 0}`
            }
          />
        </div>
        <p className="text-xs text-slate-600 dark:text-slate-400">
          {p.symbol} · {p.ts ? `features of ${utcHour(p.ts)}` : "explicit vector"} · {p.model_name}{" "}
          v{p.model_version}
          {p.logged ? " · logged" : ""}
          {p.degraded ? " · degraded features" : ""}
        </p>
        {p.explanation ? (
          <>
            <p
              data-testid="explanation-text"
              className="rounded-md bg-slate-100 p-3 text-sm dark:bg-slate-800"
            >
              {p.explanation.text}
            </p>
            <ShapChart explanation={p.explanation} />
          </>
        ) : (
          <p className="text-sm">No explanation was returned.</p>
        )}
      </div>
    </Card>
  );
}
