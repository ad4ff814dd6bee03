"""PostgreSQL from the `pgserver` package, data under <state_dir>/postgres/data."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

from rayapp.log import get_logger

log = get_logger(__name__)
logging.getLogger("pgserver").setLevel(logging.WARNING)
# pgserver keeps its lock file under the user runtime dir; without XDG_RUNTIME_DIR (root, CI)
# platformdirs warns on every import and falls back to /tmp/runtime-<uid> anyway.
os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


class EmbeddedPostgres:
    def __init__(self, state_dir: Path) -> None:
        self.pgdata = state_dir / "postgres" / "data"

    def _info(self):  # -> pgserver.utils.PostmasterInfo | None
        from pgserver.utils import PostmasterInfo

        if not (self.pgdata / "postmaster.pid").exists():
            return None
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running():
            return None
        return info

    def url(self) -> str | None:
        """The running server's URL, or None when it is not running."""
        info = self._info()
        return info.get_uri() if info is not None else None

    def start(self) -> tuple[str, bool]:
        """Start (or reuse) the server. Returns (url, started_now)."""
        url = self.url()
        if url is not None:
            return url, False
        import pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # pgserver caches one handle per pgdata per process and hands it back without starting
        # anything: after a stop in this process, that handle is stale.
        from pgserver.postgres_server import PostgresServer

        PostgresServer._instances.pop(self.pgdata.expanduser().resolve(), None)
        # cleanup_mode=None: the server outlives this process until `rayapp services down`.
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        url = server.get_uri()
        log.info("postgres started", pgdata=str(self.pgdata), url=url)
        return url, True

    def stop(self) -> bool:
        """Stop cleanly (fast shutdown: checkpoint, then exit). Returns whether one was running."""
        info = self._info()
        if info is None:
            return False
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

        user = "pgserver" if _is_root() else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=60)
        except subprocess.CalledProcessError as exc:
            log.warning("pg_ctl stop failed, terminating", error=str(exc))
            info.process.terminate()
            info.process.wait(10)
        log.info("postgres stopped", pgdata=str(self.pgdata))
        return True


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
