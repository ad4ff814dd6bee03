"""The market replay server: CSV history served through the real public API paths.

A local HTTP server that answers the Binance klines, Coinbase candles, CryptoCompare news,
alternative.me and CoinDesk RSS endpoints from history on disk (same paths, paging, headers, 429
past the weight limit), optionally on a simulated clock. Users run it for offline demos
(`rayapp replay`, `sources=replay`); tests and benchmarks use it as the recorded public internet.

Public API, loaded on first use.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.replay.server import REPLAY, Clock, ReplayData, ReplayServer, app_from_settings, make_app

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"rayapp.replay.server": ("REPLAY", "Clock", "ReplayData", "ReplayServer", "app_from_settings", "make_app")},
)

__all__ = ["REPLAY", "Clock", "ReplayData", "ReplayServer", "app_from_settings", "make_app"]
