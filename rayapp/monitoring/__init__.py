"""Monitoring: drift of the served features against the champion's training window, staleness.

Public API, loaded on first use.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
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
        )
    },
)

__all__ = [
    "PSI_ALERT",
    "PSI_WARN",
    "DriftReport",
    "DriftTest",
    "benjamini_hochberg",
    "drift_inputs",
    "drift_report",
    "psi",
    "psi_drift_test",
]
