// The header's alert badge: how many alerts fire, coloured by the most severe, linking to the
// System page's Alerts card. Nothing while none fire, while loading, or when /alerts fails (the
// API banner already says when the API is down; an older API has no /alerts).
import { Link } from "react-router-dom";
import { useAlerts } from "../api/queries";
import { alertBadgeLabel, alertSummary, SEVERITY_PILL } from "../lib/alerts";

export function AlertBadge() {
  const alerts = useAlerts();
  const { total, severity } = alertSummary(alerts.isError ? null : alerts.data?.counts);
  if (total === 0 || !severity) return null;
  const label = alertBadgeLabel(total, severity);
  return (
    <Link
      to="/system"
      data-testid="alert-badge"
      data-severity={severity}
      aria-label={label}
      title={label}
      className={`inline-flex items-center gap-1 rounded-full px-2 py-0.5 text-xs font-semibold tabular ${SEVERITY_PILL[severity]}`}
    >
      <svg aria-hidden="true" viewBox="0 0 16 16" className="h-3.5 w-3.5" fill="currentColor">
        <path d="M8 1.5a4.5 4.5 0 0 0-4.5 4.5v2.8L2 11.2V12h12v-.8l-1.5-2.4V6A4.5 4.5 0 0 0 8 1.5zM6.3 13a1.8 1.8 0 0 0 3.4 0z" />
      </svg>
      {total}
    </Link>
  );
}
