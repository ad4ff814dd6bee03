// CSV export of the tables the Analytics page shows (RFC 4180 quoting).
export interface Table {
  name: string;
  columns: string[];
  rows: Record<string, unknown>[];
}

export function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV; with several tables a leading `table` column says which each row belongs to. */
export function toCsv(tables: Table[]): string {
  const multi = tables.length > 1;
  const cols = multi ? [...new Set(tables.flatMap((t) => t.columns))] : (tables[0]?.columns ?? []);
  const header = (multi ? ["table", ...cols] : cols).map(cell).join(",");
  const lines = tables.flatMap((t) =>
    t.rows.map((r) =>
      (multi ? [t.name, ...cols.map((c) => r[c])] : cols.map((c) => r[c])).map(cell).join(","),
    ),
  );
  return [header, ...lines].join("\r\n") + "\r\n";
}

export function download(filename: string, text: string, type = "text/csv;charset=utf-8"): void {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
