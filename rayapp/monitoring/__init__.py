"""Monitoring: drift of the served features against the champion's training window, staleness,
and the alerting configs (`rayapp alerting render|check`: deploy/ with conf/alerting/).

Public API, loaded on first use.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.monitoring.alerting import (
        CheckResult,
        Rendered,
        check_configs,
        parse_duration,
        render_configs,
    )
    from rayapp.monitoring.drift import (
        PSI_ALERT,
        PSI_WARN,
        DriftReport,
        DriftTest,
        benjamini_hochberg,
        drift_inputs,
        drift_report,
        psi,
        psi_drift_test,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.monitoring.alerting": ("CheckResult", "Rendered", "check_configs", "parse_duration", "render_configs"),
        "rayapp.monitoring.drift": (
            "PSI_ALERT",
            "PSI_WARN",
            "DriftReport",
            "DriftTest",
            "benjamini_hochberg",
            "drift_inputs",
            "drift_report",
            "psi",
            "psi_drift_test",
        ),
    },
)

__all__ = [
    "PSI_ALERT",
    "PSI_WARN",
    "CheckResult",
    "DriftReport",
    "DriftTest",
    "Rendered",
    "benjamini_hochberg",
    "check_configs",
    "drift_inputs",
    "drift_report",
    "parse_duration",
    "psi",
    "psi_drift_test",
    "render_configs",
]
