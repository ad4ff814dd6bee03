"""The dashboard's single-page-app fallback: deep links and reloads of every page work.

The built dashboard (frontend/dist) is a single `index.html` whose router draws each page from the
URL, so `GET /system` must answer `index.html`, while the API keeps its own paths. Which paths are
the API's is read from the app's own routes (the first segment of every route's path: `predictions`
for `/predictions/{prediction_id}`, `ws`, `docs`, ...), never from a list kept by hand. Which paths
are the dashboard's pages comes from the build itself: `dist/pages.json` (written by the Vite
build from the router's page list, frontend/src/pages.json).

For a GET or HEAD request, in order:

1. a real file of the build (`/assets/index-....js`, `/config.json`) is served as that file;
2. a dashboard page that is also an API path (`/models`, `/predict`) answers `index.html` to a
   browser navigation (`Accept: text/html`) and when no GET route of the API matches (`GET
   /predict`: the API's is a POST); a fetch of `/models` still gets the API's JSON;
3. a path outside every API prefix (`/analytics`, `/system`, `/no/such/page`) answers
   `index.html` (the dashboard shows its own "page not found");
4. everything else is the API's: an unknown API path (`/predictions/x/y`) stays a JSON 404.

`index.html` goes out with `Cache-Control: no-cache`, so a new deployment's bundle is picked up on
the next load; the hashed assets are immutable and cached as StaticFiles sends them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import FileResponse
from starlette.routing import Match, Mount

from rayapp.log import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

log = get_logger(__name__)
MOUNT_NAME = "dashboard"
PAGES_FILE = "pages.json"


def read_pages(dist: Path) -> frozenset[str]:
    """The dashboard's page paths from the build's `pages.json` (`[{"path": "/system", ...}]`);
    empty (rule 3 still serves every non-API page) when the file is missing or unreadable."""
    try:
        entries = json.loads((dist / PAGES_FILE).read_text())
        pages = frozenset(_norm(str(e["path"])) for e in entries)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("dashboard pages unknown", file=str(dist / PAGES_FILE), error=type(exc).__name__)
        return frozenset()
    return pages


def _norm(path: str) -> str:
    return "/" + path.strip("/")


def _first_segment(path: str) -> str:
    return path.lstrip("/").split("/", 1)[0]


def api_prefixes(routes: list[BaseRoute]) -> frozenset[str]:
    """The first path segment of every route but the dashboard's mount (`{...}` ones skipped: a
    route whose first segment is a parameter would claim every path)."""
    out = set()
    for r in routes:
        if isinstance(r, Mount) and r.name == MOUNT_NAME:
            continue
        seg = _first_segment(getattr(r, "path", ""))
        if seg and "{" not in seg:
            out.add(seg)
    return frozenset(out)


def wants_html(scope: Scope) -> bool:
    """A browser navigation: its Accept header asks for HTML (fetch() and curl send */* or JSON)."""
    for name, value in scope.get("headers", []):
        if name == b"accept":
            return b"text/html" in value.lower()
    return False


class SpaFallback:
    """Pure ASGI middleware answering `index.html` for the dashboard's pages (rules above)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, dist: Path) -> None:
        self.app, self.api, self.dist = app, fastapi_app, dist.resolve()
        self.index = self.dist / "index.html"
        self.pages = read_pages(self.dist)
        self._prefixes: frozenset[str] | None = None

    @property
    def prefixes(self) -> frozenset[str]:
        # read on first use: every route, including ones registered after this middleware, counts
        if self._prefixes is None:
            self._prefixes = api_prefixes(self.api.router.routes)
        return self._prefixes

    def is_file(self, path: str) -> bool:
        rel = path.lstrip("/")
        if not rel:
            return False
        p = (self.dist / rel).resolve()
        return p.is_relative_to(self.dist) and p.is_file()

    def _get_route_matches(self, scope: Scope) -> bool:
        probe = {**scope, "method": "GET"}
        for r in self.api.router.routes:
            if isinstance(r, Mount) and r.name == MOUNT_NAME:
                continue
            if r.matches(probe)[0] == Match.FULL:
                return True
        return False

    def serves_index(self, scope: Scope) -> bool:
        path = scope["path"]
        if self.is_file(path):
            return False
        if _norm(path) in self.pages:
            return wants_html(scope) or not self._get_route_matches(scope)
        return _first_segment(path) not in self.prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and self.serves_index(scope):
            response = FileResponse(self.index, media_type="text/html", headers={"Cache-Control": "no-cache"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, dist: Path) -> None:
    """Serve the built dashboard: its files at `/` (mounted last, so every API route wins over a
    file of the same name) and `index.html` for its pages."""
    from fastapi.staticfiles import StaticFiles
    from starlette.middleware import Middleware

    app.mount("/", StaticFiles(directory=str(dist), html=True), name=MOUNT_NAME)
    # innermost of the app's middleware (add_middleware would put it outermost): index.html goes
    # out through every other one (request metrics, security headers) like any response
    app.user_middleware.append(Middleware(SpaFallback, fastapi_app=app, dist=dist))
