"""The alerting stack on loopback, for the delivery tests and benchmarks/alerting.py: the
repository's Prometheus and Alertmanager configs (rendered by `rayapp alerting render` from test
settings, never edited) run by the real `prometheus` and `prometheus-alertmanager` binaries, with
stand-ins for what cannot run here: a local HTTP server that records the Slack-format JSON
Alertmanager posts to a Slack incoming webhook, and a local SMTP server (aiosmtpd) that records the
e-mails.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")


def missing_binaries() -> str | None:
    """Why the stack cannot start here (None when it can)."""
    if shutil.which("prometheus") is None:
        return "prometheus is not installed (Debian: apt-get install prometheus)"
    if not any(shutil.which(b) for b in ALERTMANAGER_BINARIES):
        return "prometheus-alertmanager is not installed (Debian: apt-get install prometheus-alertmanager)"
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return "aiosmtpd is not installed (pip install -e '.[dev]')"
    return None


@dataclass
class Received:
    at: float  # time.time() when it arrived
    body: Any


class SlackStandIn:
    """Records what a Slack incoming webhook would receive (POST of Slack-format JSON)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with stand_in._lock:
                    stand_in.received.append(Received(time.time(), {"path": self.path, **body}))
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/rayapp-test"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def find(self, alertname: str, status: str, since: float = 0.0) -> list[Received]:
        """Slack messages about `alertname` with `status` (firing | resolved), from the title."""
        want = f"[{status.upper()}"
        return [
            m
            for m in self.messages()
            if m.at >= since
            and any(
                want in a.get("title", "") and alertname in a.get("title", "") for a in m.body.get("attachments", [])
            )
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpStandIn:
    """Records the e-mails an SMTP server would accept (aiosmtpd on loopback)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from rayapp.services import free_port

        self.received: list[Received] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with stand_in._lock:
                    stand_in.received.append(Received(time.time(), {"to": list(envelope.rcpt_tos), "message": msg}))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.smarthost = f"127.0.0.1:{self.port}"

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def find(self, alertname: str, status: str, since: float = 0.0) -> list[Received]:
        """E-mails about `alertname` with `status`, from the subject deploy/alertmanager.yml sets."""
        out = []
        for m in self.messages():
            msg: EmailMessage = m.body["message"]
            subject = str(msg.get("subject", ""))
            if m.at >= since and f"[rayapp {status}]" in subject and alertname in subject:
                out.append(m)
        return out

    def close(self) -> None:
        self.controller.stop()


@dataclass
class AlertStack:
    """Prometheus + Alertmanager on loopback with the rendered repository configs."""

    settings: Any
    workdir: Path
    slack: SlackStandIn
    smtp: SmtpStandIn
    prometheus_url: str = ""
    alertmanager_url: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def overrides(
        cls, *, app_target: str, feed_url: str, scrape_s: float, eval_s: float, for_scale: float, fast_routes: bool
    ) -> list[str]:
        """Test settings for the stack: where to scrape, how fast, and route timings (the
        Alertmanager port and stand-ins are filled in by `start`)."""
        out = [
            f"alerting.scrape_interval_s={scrape_s}",
            f"alerting.evaluation_interval_s={eval_s}",
            f"alerting.for_scale={for_scale}",
            f"alerting.serving_targets=[{app_target}]",
            "alerting.ray_targets=[]",
            f"alerting.feed_url={feed_url}",
            "alerting.email.require_tls=false",
        ]
        if fast_routes:
            out += [
                "alerting.routes.group_wait_s=1",
                "alerting.routes.group_interval_s=2",
                "alerting.routes.info_group_wait_s=1",
                "alerting.routes.info_group_interval_s=2",
                "alerting.routes.feed_group_wait_s=1",
                "alerting.routes.feed_group_interval_s=2",
            ]
        return out

    def start(self, timeout_s: float = 60) -> AlertStack:
        import httpx

        from rayapp.monitoring import render_configs
        from rayapp.services import free_port
        from rayapp.testing.wait import wait_until

        self.workdir.mkdir(parents=True, exist_ok=True)
        slack_file = self.workdir / "slack_webhook_url"
        slack_file.write_text(self.slack.url + "\n")
        am_port, prom_port = free_port(), free_port()
        a = self.settings.alerting
        a.alertmanager_targets = [f"127.0.0.1:{am_port}"]
        a.slack.api_url_file = str(slack_file)
        a.email.smarthost = self.smtp.smarthost
        rendered = render_configs(self.settings, self.workdir / "config")
        am_bin = next(shutil.which(b) for b in ALERTMANAGER_BINARIES if shutil.which(b))
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.procs.append(
            subprocess.Popen(
                [
                    str(am_bin),
                    f"--config.file={rendered.alertmanager}",
                    f"--storage.path={self.workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                    "--log.level=info",
                ],
                stdout=(logs / "alertmanager.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        self.procs.append(
            subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={rendered.prometheus}",
                    f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=info",
                ],
                stdout=(logs / "prometheus.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        self.alertmanager_url = f"http://127.0.0.1:{am_port}"
        self.prometheus_url = f"http://127.0.0.1:{prom_port}"

        def ready(url: str) -> bool:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        for url, what in ((self.alertmanager_url, "alertmanager"), (self.prometheus_url, "prometheus")):
            wait_until(
                lambda url=url: ready(url),  # type: ignore[misc]
                timeout_s,
                ignore=(httpx.HTTPError,),
                what=f"{what} to be ready (logs: {logs})",
            )
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query's result (raises on a query error, with Prometheus's message)."""
        import httpx

        r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise ValueError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]  # type: ignore[no-any-return]

    def targets_up(self) -> bool:
        return any(float(s["value"][1]) == 1 for s in self.query('up{job="rayapp-serving"}'))

    def firing(self) -> list[dict[str, Any]]:
        """Alerts Prometheus has firing (state firing, not pending)."""
        import httpx

        body = httpx.get(f"{self.prometheus_url}/api/v1/alerts", timeout=10).json()
        return [a for a in body["data"]["alerts"] if a["state"] == "firing"]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()
