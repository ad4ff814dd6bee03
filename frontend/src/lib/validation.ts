// Instant validation of the Predict form, mirroring the API's rules (api_models.py): a symbol
// matches ^[A-Z0-9]{2,20}$, every model feature is present, each value is a finite number or
// empty (= missing, sent as null), the API key is non-empty.
export const SYMBOL_RE = /^[A-Z0-9]{2,20}$/;

export function symbolError(s: string, served?: string[]): string | null {
  if (!s) return "Enter a symbol, e.g. BTCUSDT.";
  if (!SYMBOL_RE.test(s)) return "2–20 upper-case letters or digits, e.g. BTCUSDT.";
  if (served && served.length && !served.includes(s))
    return `Not served; served: ${served.join(", ")}.`;
  return null;
}

/** Parse one feature field: "" → null (missing); otherwise a finite number or an error. */
export function parseFeature(raw: string): { value: number | null; error: string | null } {
  const t = raw.trim();
  if (t === "") return { value: null, error: null };
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t))
    return { value: null, error: "Not a number." };
  const v = Number(t);
  if (!Number.isFinite(v)) return { value: null, error: "Must be finite." };
  return { value: v, error: null };
}

export function validateVector(
  names: string[],
  raw: Record<string, string>,
): { values: Record<string, number | null>; errors: Record<string, string>; missing: number } {
  const values: Record<string, number | null> = {};
  const errors: Record<string, string> = {};
  let missing = 0;
  for (const n of names) {
    const { value, error } = parseFeature(raw[n] ?? "");
    if (error) errors[n] = error;
    values[n] = value;
    if (value === null && !error) missing += 1;
  }
  if (names.length && missing === names.length)
    errors["_form"] = "Give at least one feature value.";
  return { values, errors, missing };
}
