"""Loopback stand-ins for a network that does not reach the markets (helpers, not a test module).

* `closed_port()`: a port nothing listens on (connection refused);
* `SilentListener`: accepts connections and never answers (a firewall that swallows packets, a
  hung server: the client times out);
* `ServerThread`: the fault-injecting aiohttp server of faults.py on a loop of its own, for code
  that runs its own event loop (`asyncio.run`) or other processes;
* `LocalProxy`: a tiny HTTP forward proxy: absolute-URI requests (what `HTTP_PROXY` sends for
  http:// URLs) are relayed to their loopback origin, `CONNECT` (what `HTTPS_PROXY` sends for
  https:// URLs) is refused with 403 like a blocking corporate proxy. Every request line is kept.

Nothing here sends a byte off this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from rayapp.services import free_port
from tests.ingest.faults import FaultServer


def closed_port() -> int:
    """A loopback port with no listener (free_port binds and closes it)."""
    return free_port()


class _Acceptor:
    """A loopback TCP listener whose accept loop runs in a thread while the block runs; each
    accepted connection goes to `on_connection`."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def on_connection(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.on_connection(conn)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()


class SilentListener(_Acceptor):
    """Accepts TCP connections on loopback and never sends anything back."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[socket.socket] = []

    def on_connection(self, conn: socket.socket) -> None:
        self.accepted.append(conn)  # held open, never answered

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for c in self.accepted:
            c.close()


class ServerThread:
    """A FaultServer on its own event loop in a thread; `url` once entered."""

    def __init__(self, server: FaultServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class LocalProxy(_Acceptor):
    """A forward proxy on loopback that records what it is asked (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []  # the request line of everything asked of the proxy

    def on_connection(self, conn: socket.socket) -> None:
        threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = _read_head(conn)
            if not head:
                return
            line, _, rest = head.partition(b"\r\n")
            method, target, _version = line.decode("latin-1").split(" ", 2)
            self.lines.append(f"{method} {target}")
            if method == "CONNECT":
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self._forward(conn, method, target, rest)

    def _forward(self, conn: socket.socket, method: str, target: str, rest: bytes) -> None:
        u = urlsplit(target)
        host, port = u.hostname or "127.0.0.1", u.port or 80
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        headers, _, body = rest.partition(b"\r\n\r\n")
        kept = [h for h in headers.split(b"\r\n") if h and not h.lower().startswith((b"connection:", b"proxy-"))]
        request = (
            f"{method} {path} HTTP/1.1\r\n".encode() + b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body
        )
        with socket.create_connection((host, port), timeout=10) as up:
            up.sendall(request)
            while chunk := up.recv(65536):
                conn.sendall(chunk)


def proxy_env(monkeypatch: Any, proxy_url: str) -> None:
    """The standard proxy variables pointing at `proxy_url`, nothing exempted."""
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)


def no_proxy_env(monkeypatch: Any) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
