"""The built dashboard under the app's Content-Security-Policy, in headless Chromium: no violation.

Chromium is driven over the DevTools protocol (its WebSocket, with the `websockets` client the
tests already use): every page of the dashboard is opened the way a person does (the first page
by URL, the others by their navigation links, so every lazily loaded chunk is fetched), and
every CSP violation is collected twice: by a `securitypolicyviolation` listener installed before
any page script runs, and from the console and log. The dashboard's own WebSocket must have
opened (the policy's `connect-src` was exercised). A page that breaks a policy on purpose is
loaded first, so a collector that sees nothing cannot pass the test.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from rayapp.testing import wait_until
from tests.e2e.browser import CHROMIUM, missing_browser

pytestmark = pytest.mark.integration  # Chromium against the Serve app

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]
COLLECT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
window.__ws = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('open', () => window.__ws.push(String(args[0])));
  }
};
"""
VIOLATING_PAGE = "data:text/html," + quote(
    "<meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\"><script>1</script><p>x</p>"
)


class DevTools:
    """A minimal DevTools protocol client over one browser WebSocket (flat sessions)."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + 60
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, session: str, expression: str) -> Any:
        out = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return out.get("result", {}).get("value")

    def drain(self, seconds: float) -> None:
        """Take the events that arrive within `seconds` (the pages' own requests settle)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def messages(self) -> list[str]:
        """Console, log and exception texts seen so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Log.entryAdded":
                out.append(p["entry"].get("text", ""))
            elif e.get("method") == "Runtime.consoleAPICalled":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails", {}))[:500])
        return out


@pytest.fixture
def devtools(tmp_path: Path) -> Iterator[DevTools]:
    why = missing_browser()
    if why:
        if os.environ.get("RAYAPP_E2E_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or []], daemon=True).start()

    def endpoint() -> str | None:
        while not lines.empty():
            m = re.search(r"DevTools listening on (ws://\S+)", lines.get())
            if m:
                return m.group(1)
        return None

    try:
        url = wait_until(endpoint, 60, what="Chromium's DevTools endpoint")
        client = DevTools(url)
        yield client
        client.ws.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _open_tab(dt: DevTools) -> str:
    target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        dt.call(f"{domain}.enable", session=session)
    dt.call("Page.addScriptToEvaluateOnNewDocument", {"source": COLLECT}, session)
    return session


def test_dashboard_pages_raise_no_csp_violation(app_url: str, devtools: DevTools) -> None:
    dt = devtools
    # the collector sees a violation when there is one
    control = _open_tab(dt)
    dt.call("Page.navigate", {"url": VIOLATING_PAGE}, control)
    wait_until(lambda: dt.evaluate(control, "window.__csp && window.__csp.length"), 30, what="the control violation")
    dt.drain(0.5)
    assert any("Content Security Policy" in m for m in dt.messages()), dt.messages()
    dt.events.clear()

    session = _open_tab(dt)
    dt.call("Page.navigate", {"url": f"{app_url}/"}, session)
    wait_until(
        lambda: dt.evaluate(session, "document.querySelectorAll('#root *').length > 30"),
        60,
        what="the dashboard to render",
    )
    wait_until(lambda: dt.evaluate(session, "window.__ws.length > 0"), 60, what="the dashboard's WebSocket to open")
    for page in ("/predict", "/analytics", "/system", "/models", "/"):
        clicked = dt.evaluate(
            session,
            f"(() => {{ const a = document.querySelector('a[href=\"{page}\"]'); if (a) a.click(); return !!a; }})()",
        )
        if not clicked:
            continue  # a page the dashboard does not link (yet)
        wait_until(lambda p=page: dt.evaluate(session, "location.pathname") == p, 30, what=f"navigation to {page}")
        dt.drain(1.5)  # lazily loaded chunks, queries and sockets of the page
    violations = dt.evaluate(session, "window.__csp")
    csp_messages = [m for m in dt.messages() if "Content Security Policy" in m or "Content-Security-Policy" in m]
    assert violations == [] and csp_messages == [], (violations, csp_messages)
    assert dt.evaluate(session, "location.pathname") == "/"
