"""Starting or joining Ray: the one `ensure_ray` every command, flow and job uses.

- `ray.address` set (`auto`, `HOST:PORT` or `ray://HOST:10001`): join that cluster, passing no
  resource arguments (Ray rejects them when it connects to an existing cluster: the cluster's own
  nodes say what they have).
- unset, but `RAY_ADDRESS` in the environment (a `ray job submit` driver runs with it): join the
  cluster the job was submitted to, likewise without resource arguments.
- neither: start a new local cluster with `ray.num_cpus` CPUs (and the dashboard when asked).
  `address="local"`, so a `ray start` cluster that happens to run on the same machine is never
  joined by accident (plain `ray.init()` would, and then fail on `num_cpus`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


def joins_cluster(settings: Settings | None) -> bool:
    """Whether `ensure_ray` joins an existing cluster (`ray.address`, or RAY_ADDRESS) rather
    than starting a local one that ends with this process."""
    return bool((settings is not None and settings.ray.address) or os.environ.get("RAY_ADDRESS"))


def ensure_ray(
    settings: Settings | None,
    *,
    dashboard: bool = False,
    log_to_driver: bool = False,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Connect to the configured cluster or start a local one (no-op when Ray is up already).

    `env` goes into this process's environment before a local start, so the local cluster's
    processes inherit it; values the operator already set win. `settings=None` (library callers
    without a configuration) starts a local cluster on every CPU. Returns the dashboard URL when
    one runs.
    """
    import ray

    if ray.is_initialized():
        return None
    common: dict[str, Any] = {"log_to_driver": log_to_driver, "configure_logging": False}
    address = settings.ray.address if settings is not None else None
    if joins_cluster(settings):
        log.info("ray connecting", address=address or f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}")
        ctx = ray.init(address=address, **common)  # None: Ray reads RAY_ADDRESS itself
    else:
        for key, value in (env or {}).items():
            os.environ.setdefault(key, value)
        num_cpus = settings.ray.num_cpus if settings is not None else None
        local: dict[str, Any] = {"address": "local", "num_cpus": num_cpus, **common}
        if dashboard:
            try:
                ctx = ray.init(include_dashboard=True, dashboard_host="127.0.0.1", **local)
            except Exception as exc:  # the dashboard needs optional packages: run without it
                log.warning("ray dashboard unavailable", error=type(exc).__name__)
                ctx = ray.init(include_dashboard=False, **local)
        else:
            ctx = ray.init(include_dashboard=False, **local)
    url = getattr(ctx, "dashboard_url", None)
    if not url:
        return None
    return url if url.startswith("http") else f"http://{url}"
