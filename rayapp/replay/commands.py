"""``rayapp replay``: serve CSV history through the real API paths (see rayapp.replay.server)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rayapp.errors import InputError
from rayapp.log import get_logger
from rayapp.terminal import add_overrides

log = get_logger(__name__)


def _serve(args: argparse.Namespace, settings: Any) -> int:
    from aiohttp import web

    from rayapp.replay.server import REPLAY, app_from_settings

    rs = settings.replay.model_copy(deep=True)
    for name in ("data", "port", "start", "speed", "host"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(rs, name, value)
    if rs.speed > 0 and not rs.start:
        raise InputError("replay cannot start: --speed needs --start (the market time the clock starts at)")
    try:
        app = app_from_settings(rs)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(f"replay cannot start: {exc}") from exc

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, rs.host, rs.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info(
            "replay serving",
            url=f"http://{rs.host}:{port}",
            data=rs.data,
            start=rs.start,
            speed=rs.speed,
            hint=f"point clients at it: sources=replay replay.port={port}",
        )
        try:
            await asyncio.Event().wait()
        finally:
            stats = app[REPLAY].stats
            log.info("replay stopped", requests=stats["requests"], rows=stats["rows"], throttled=stats["throttled"])
            await runner.cleanup()

    asyncio.run(main())
    return 0


def register(subparsers: Any) -> None:
    text = (
        "serve CSV history as the Binance klines, CryptoCompare news, alternative.me and CoinDesk RSS "
        "APIs on a local port; with --speed, simulate live time from --start"
    )
    p = subparsers.add_parser("replay", help="local market replay server (offline live path)", description=text)
    p.add_argument("--data", help="folder with the CSV history (default replay.data, ../shared/data)")
    p.add_argument("--port", type=int, help="port to listen on (default replay.port; 0 = a free one)")
    p.add_argument("--host", help="interface to bind (default replay.host, 127.0.0.1)")
    p.add_argument("--start", help="ISO UTC time the simulated clock starts at (default: serve all)")
    p.add_argument("--speed", type=float, help="market seconds per wall second, e.g. 3600 = one market hour per second")
    add_overrides(p)
    p.set_defaults(handler=_serve)
