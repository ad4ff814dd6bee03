// The symbol the pages show: ?symbol=... in the URL, else the first one the API serves.
export const DEFAULT_SYMBOL = "BTCUSDT";
export function currentSymbol(search: string = window.location.search): string {
  const s = new URLSearchParams(search).get("symbol");
  return s && /^[A-Z0-9]{2,20}$/.test(s) ? s : DEFAULT_SYMBOL;
}
