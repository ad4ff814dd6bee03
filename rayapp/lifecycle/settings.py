"""The backtest's settings live in rayapp.config (`Settings.backtest`, conf/backtest/); the
policy names are re-exported here for the backtest code."""

from __future__ import annotations

from rayapp.config import BacktestPolicy as Policy
from rayapp.config import BacktestSettings

POLICIES = ("never", "weekly", "triggered")

__all__ = ["POLICIES", "BacktestSettings", "Policy"]
