"""SHAP explanations of the XGBoost model (global importance; per-prediction contributions)."""

from rayapp.explain.shap_values import contributions, global_importance, plot_importance

__all__ = ["contributions", "global_importance", "plot_importance"]
