// Links to rayapp's Grafana dashboards (deploy/grafana), by uid: `${base}/d/${uid}`. The base URL
// is config.json's links.grafana; the uids are its grafana_dashboards, each falling back to the
// uid the provisioned dashboard ships with.
import type { DashboardConfig } from "../api/queries";

export type GrafanaDashboard = keyof NonNullable<DashboardConfig["grafana_dashboards"]>;

/** The provisioned dashboards, in the order the System page lists them. */
export const GRAFANA_DASHBOARDS: readonly { key: GrafanaDashboard; label: string; uid: string }[] =
  [
    { key: "model", label: "Model performance", uid: "rayapp-model" },
    { key: "serving", label: "Serving", uid: "rayapp-serving" },
    { key: "data", label: "Data and drift", uid: "rayapp-data" },
    { key: "pipeline", label: "Pipeline", uid: "rayapp-pipeline" },
  ];

export interface GrafanaLink {
  key: GrafanaDashboard;
  label: string;
  uid: string;
  href: string;
}

/** One link per dashboard; none when config.json names no Grafana base URL. */
export function grafanaLinks(config: DashboardConfig | null | undefined): GrafanaLink[] {
  const base = config?.links?.grafana?.trim().replace(/\/+$/, "");
  if (!base) return [];
  const uids = config?.grafana_dashboards ?? {};
  return GRAFANA_DASHBOARDS.map((d) => {
    const uid = uids[d.key]?.trim() || d.uid;
    return { key: d.key, label: d.label, uid, href: `${base}/d/${encodeURIComponent(uid)}` };
  });
}
