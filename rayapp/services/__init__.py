"""Embedded PostgreSQL and Redis for when no URL is configured.

Stage code never imports this package directly: it asks :func:`ensure_services` for URLs.
"""

from rayapp.services.manager import ServiceUrls, ensure_services, services_down, services_status, services_up
from rayapp.services.redis import free_port

__all__ = ["ServiceUrls", "ensure_services", "free_port", "services_down", "services_status", "services_up"]
