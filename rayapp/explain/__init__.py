"""SHAP explanations of the XGBoost model (global importance; per-prediction contributions).

Public API, loaded on first use (importing the package does not import xgboost or shap).
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.explain.shap_values import contributions, global_importance, plot_importance

__getattr__, __dir__ = lazy_exports(
    __name__, {"rayapp.explain.shap_values": ("contributions", "global_importance", "plot_importance")}
)

__all__ = ["contributions", "global_importance", "plot_importance"]
