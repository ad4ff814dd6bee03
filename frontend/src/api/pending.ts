// Shapes of routes the dashboard asks the serving API for but which are not in its OpenAPI
// document yet (see the frontend report: GET /prices). Everything else is typed from
// schema.d.ts. When the route lands, regenerate (npm run gen:api) and replace this with the
// generated type; the pages already treat a 404 here as "not available".
export interface PricePoint {
  ts: string;
  close: number;
}
export interface PriceSeries {
  symbol: string;
  source?: string | null;
  items: PricePoint[];
}

/** GET /freshness: newest row per source in the warehouse (requested; see the report). */
export interface SourceFreshness {
  source: string;
  dataset: string;
  latest: string | null;
  age_s: number | null;
}
export interface Freshness {
  items: SourceFreshness[];
}
