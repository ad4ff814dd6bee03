"""Small helpers for any test package (fixtures live in conftest.py; nothing imports a conftest)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def short_tmpdir(prefix: str) -> Path:
    """A fresh directory directly under /tmp.

    Not pytest's tmp_path: the embedded PostgreSQL runs as the unprivileged `pgserver` user when
    we are root, and pytest re-locks /tmp/pytest-of-<user> to mode 0700 whenever a session starts,
    which would cut the server off from its own data directory. The path is also short, as
    PostgreSQL's unix socket path must stay under ~100 bytes.
    """
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
