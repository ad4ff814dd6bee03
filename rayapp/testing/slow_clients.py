"""Slow and long-lived clients against a running app (issue 19's load), for tests and benchmarks.

`SlowClients(base_url, ...)` opens, over loopback from several source addresses (127.0.x.y: the
whole 127/8 is loopback on Linux, so each address is a client of its own to the server's
per-client limits):

- `stalled` uploads: `POST /predict` with a `Content-Length` and one byte of body, then nothing;
- `websockets` idle WebSockets (read, never written to);
- `header_stalls` connections that send part of a request line and stop, and `idle` connections
  that send nothing at all, and `keep_alive` connections that make one request and then idle.

Each one records when the server closed it and what it answered, so a caller can check that
every stalled client is closed within its timeout while it measures the requests that matter.
With `reopen`, a stalled upload the server closed is replaced at once by a new one from the same
address, so the load is held for as long as a measurement runs. `close()` closes whatever is
still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Closed:
    kind: str  # stalled | header | idle | keep_alive
    status: int | None  # the HTTP status the server answered (None: closed without an answer)
    after_s: float | None  # seconds from the last byte sent to the server closing (None: still open)


@dataclass
class SlowClients:
    base_url: str
    stalled: int = 200
    websockets: int = 200
    header_stalls: int = 0
    idle: int = 0
    keep_alive: int = 0
    stalled_per_address: int = 20
    ws_per_address: int = 10
    ws_path: str = "/ws/predictions"
    content_length: int = 4000
    reopen: bool = False  # a stalled upload the server closed is replaced by a new one (held load)
    results: list[Closed] = field(default_factory=list)
    ws_open: list[Any] = field(default_factory=list)
    ws_refused: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _closing: bool = False

    @property
    def host_port(self) -> tuple[str, int]:
        u = urlsplit(self.base_url)
        return u.hostname or "127.0.0.1", u.port or 80

    async def open(self) -> None:
        """Open every client (returns once all are connected and have sent what they send)."""
        host, port = self.host_port
        started: list[asyncio.Future[None]] = []

        def spawn(coro: Any) -> None:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            started.append(ready)
            self._tasks.append(asyncio.create_task(coro(ready)))

        for i in range(self.stalled):
            src = f"127.0.1.{2 + i // self.stalled_per_address}"
            spawn(lambda ready, src=src: self._raw(ready, "stalled", src, host, port))
        for kind, n in (("header", self.header_stalls), ("idle", self.idle), ("keep_alive", self.keep_alive)):
            for i in range(n):
                spawn(lambda ready, kind=kind, i=i: self._raw(ready, kind, f"127.0.4.{2 + i}", host, port))
        await asyncio.gather(*started)
        ws_url = f"ws://{host}:{port}{self.ws_path}"
        for chunk in range(0, self.websockets, 50):  # handshakes in batches: a burst of 200 at once is its own test
            await asyncio.gather(
                *(
                    self._ws(ws_url, f"127.0.2.{2 + i // self.ws_per_address}")
                    for i in range(chunk, min(chunk + 50, self.websockets))
                )
            )

    async def _raw(self, ready: asyncio.Future[None], kind: str, src: str, host: str, port: int) -> None:
        await self._raw_once(ready, kind, src, host, port)
        while kind == "stalled" and self.reopen and not self._closing:
            await self._raw_once(None, kind, src, host, port)

    async def _raw_once(self, ready: asyncio.Future[None] | None, kind: str, src: str, host: str, port: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
        except OSError:
            self.results.append(Closed(kind, None, None))
            if ready is not None:
                ready.set_result(None)
            await asyncio.sleep(0.1)
            return
        self._writers.append(writer)
        if kind == "stalled":
            writer.write(
                f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {self.content_length}\r\n\r\n{{".encode()
            )
        elif kind == "header":
            writer.write(b"GET /health HTTP/1.1\r\nHost: ")
        elif kind == "keep_alive":
            writer.write(f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
        sent = time.monotonic()
        if ready is not None:
            ready.set_result(None)
        status: int | None = None
        data = b""
        with contextlib.suppress(OSError):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
                if kind == "keep_alive" and status is None and b"\r\n\r\n" in data:
                    sent = time.monotonic()  # idle from the end of the response on
                if status is None and data.startswith(b"HTTP/1.1 ") and len(data) >= 12:
                    status = int(data[9:12])
                    if kind == "keep_alive":
                        status = None  # the one response it asked for; what counts is the close
        self.results.append(Closed(kind, status, time.monotonic() - sent))
        writer.close()

    async def _ws(self, url: str, src: str) -> None:
        from websockets.asyncio.client import connect

        try:
            ws = await connect(url, local_addr=(src, 0), open_timeout=60, ping_interval=None)
        except Exception as exc:
            self.ws_refused.append(f"{type(exc).__name__}: {exc}")
            return
        self.ws_open.append(ws)

        async def drain() -> None:
            with contextlib.suppress(Exception):
                async for _ in ws:
                    pass

        self._tasks.append(asyncio.create_task(drain()))

    async def wait_closed(self, kinds: set[str], timeout_s: float) -> list[Closed]:
        """Wait (at most `timeout_s`) until every raw client of these kinds was closed."""
        want = sum(n for k, n in self._counts().items() if k in kinds)
        deadline = time.monotonic() + timeout_s
        while sum(1 for r in self.results if r.kind in kinds) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # polling the clients' own tasks (no server call)
        return [r for r in self.results if r.kind in kinds]

    def _counts(self) -> dict[str, int]:
        return {"stalled": self.stalled, "header": self.header_stalls, "idle": self.idle, "keep_alive": self.keep_alive}

    def websockets_still_open(self) -> int:
        from websockets.protocol import State

        return sum(1 for ws in self.ws_open if ws.state is State.OPEN)

    async def close(self) -> None:
        self._closing = True
        await asyncio.gather(*(ws.close() for ws in self.ws_open), return_exceptions=True)
        for w in self._writers:
            w.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def timed_requests(
    base_url: str,
    seconds: float,
    *,
    concurrency: int = 8,
    api_key: str | None = None,
    body: dict[str, Any] | None = None,
    path: str = "/predict",
    timeout_s: float = 30,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """`concurrency` workers calling `path` (POST with `body`, else GET) from 127.0.0.1 for
    `seconds` (or until `stop`): latencies (ms) of the answers, and the failures."""
    import aiohttp

    lat: list[float] = []
    failed: list[str] = []
    headers = {"X-API-Key": api_key} if api_key else {}
    end = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:

        async def worker() -> None:
            while time.monotonic() < end and not (stop is not None and stop.is_set()):
                t0 = time.perf_counter()
                try:
                    if body is None:
                        req = session.get(f"{base_url}{path}", headers=headers)
                    else:
                        req = session.post(f"{base_url}{path}", json=body, headers=headers)
                    async with req as r:
                        await r.read()
                        if r.status != 200:
                            failed.append(f"{path}: HTTP {r.status}")
                            continue
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failed.append(f"{path}: {type(exc).__name__}")
                    continue
                lat.append((time.perf_counter() - t0) * 1e3)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"latencies_ms": lat, "failed": failed}
