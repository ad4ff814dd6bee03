"""Where the dashboard and the browser are, and whether the browser test can run here."""

from __future__ import annotations

import shutil
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
CHROMIUM = "/usr/bin/chromium"


def missing_prerequisite() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (Node 20 runs the Playwright driver)"
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        return "frontend/node_modules is missing (run `npm ci` in frontend/, or frontend/ci.sh)"
    return missing_browser()


def missing_browser() -> str | None:
    """Why Chromium cannot open the built dashboard here (no browser, no build), or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if not (FRONTEND / "dist" / "index.html").is_file():
        return "frontend/dist is not built (run `npm run build` in frontend/, or frontend/ci.sh)"
    return None
