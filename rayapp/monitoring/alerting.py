"""`rayapp alerting render|check`: the Prometheus and Alertmanager configs of deploy/, as this
installation runs them.

The files in deploy/ are real configurations (promtool and amtool check them as they are) with
single-host defaults. Rendering loads them and sets what conf/alerting/ says: intervals, scrape
and Alertmanager targets, routing times per severity, receivers (Slack channels, the SMTP host and
addresses, the feed's URL), and the paths of the secret files. It never writes a secret: the Slack
webhook URL, the SMTP password and the feed's bearer token stay in their files, and the rendered
config names those files (Alertmanager reads them itself). Rules are copied with every `for`
multiplied by `alerting.for_scale` (1 in production; tests scale it down instead of editing files).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rayapp.errors import InputError

if TYPE_CHECKING:
    from rayapp.config import Settings

RULE_GROUPS = ("serving", "pipeline", "data", "model", "infrastructure")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration (`1h30m`, `30s`, `500ms`)."""
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise InputError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def duration(seconds: float) -> str:
    """A Prometheus/Alertmanager duration for `seconds` (whole seconds, else milliseconds)."""
    if seconds <= 0:
        return "0s"
    if not float(seconds).is_integer():
        return f"{max(1, round(seconds * 1000))}ms"
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def deploy_dir(settings: Settings) -> Path:
    """The repository's deploy/ (alerting.deploy_dir, else beside the package)."""
    d = Path(settings.alerting.deploy_dir).expanduser() if settings.alerting.deploy_dir else None
    d = d or Path(__file__).resolve().parents[2] / "deploy"
    if not (d / "prometheus.yml").is_file() or not (d / "alertmanager.yml").is_file():
        raise InputError(
            f"alerting.deploy_dir: {d} has no prometheus.yml and alertmanager.yml "
            "(set alerting.deploy_dir or RAYAPP_DEPLOY_DIR to the repository's deploy/)"
        )
    return d


def ensure_token(path: Path) -> bool:
    """Create the feed's bearer-token file (random, mode 0600) when missing; True if created."""
    if path.exists():
        if not path.read_text().strip():
            raise InputError(f"{path}: the alert webhook token file is empty")
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return True


def read_token(path: Path) -> str | None:
    """The feed's bearer token, or None when its file is missing or empty."""
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    return token or None


@dataclass
class Rendered:
    out_dir: Path
    prometheus: Path
    alertmanager: Path
    rules: list[Path]
    token_file: Path
    token_created: bool
    notes: list[str] = field(default_factory=list)


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc


def _dump(path: Path, header: str, doc: Any) -> None:
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200))


def scale_rules(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """A rules document with every `for` multiplied by `factor`."""
    if factor == 1:
        return doc
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "for" in rule:
                rule["for"] = duration(parse_duration(rule["for"]) * factor)
    return doc


def _route(routes: list[dict[str, Any]], receiver: str) -> dict[str, Any]:
    for r in routes:
        if r.get("receiver") == receiver:
            return r
    raise InputError(f"deploy/alertmanager.yml: no route to receiver {receiver!r}")


def _receiver(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for r in doc.get("receivers", []):
        if r.get("name") == name:
            return dict(r)
    raise InputError(f"deploy/alertmanager.yml: no receiver {name!r}")


def alertmanager_config(doc: dict[str, Any], settings: Settings, token_file: Path) -> dict[str, Any]:
    a = settings.alerting
    t, slack, email = a.routes, a.slack, a.email
    g = doc.setdefault("global", {})
    g["resolve_timeout"] = duration(t.resolve_timeout_s)
    g["slack_api_url_file"] = slack.api_url_file
    g["smtp_smarthost"] = email.smarthost
    g["smtp_from"] = email.sender
    g["smtp_require_tls"] = email.require_tls
    for key in ("smtp_auth_username", "smtp_auth_password_file"):
        g.pop(key, None)
    if email.auth_username:
        g["smtp_auth_username"] = email.auth_username
    if email.auth_password_file:
        g["smtp_auth_password_file"] = email.auth_password_file
    root = doc["route"]
    root.update(
        group_wait=duration(t.group_wait_s),
        group_interval=duration(t.group_interval_s),
        repeat_interval=duration(t.repeat_medium_s),
    )
    routes = root.get("routes", [])
    _route(routes, "rayapp-feed").update(
        group_wait=duration(t.feed_group_wait_s),
        group_interval=duration(t.feed_group_interval_s),
        repeat_interval=duration(t.feed_repeat_s),
    )
    _route(routes, "high")["repeat_interval"] = duration(t.repeat_high_s)
    _route(routes, "slack-medium")["repeat_interval"] = duration(t.repeat_medium_s)
    _route(routes, "slack-info").update(
        group_wait=duration(t.info_group_wait_s),
        group_interval=duration(t.info_group_interval_s),
        repeat_interval=duration(t.repeat_info_s),
    )
    receivers = {r["name"]: _receiver(doc, r["name"]) for r in doc.get("receivers", [])}
    for name in ("high", "slack-medium"):
        for c in receivers[name].get("slack_configs", []):
            c["channel"] = slack.channel
    for c in receivers["high"].get("email_configs", []):
        c["to"] = email.to
    for c in receivers["slack-info"].get("slack_configs", []):
        c["channel"] = slack.info_channel
        if slack.info_api_url_file:
            c["api_url_file"] = slack.info_api_url_file
    for c in receivers["rayapp-feed"].get("webhook_configs", []):
        c["url"] = a.feed_url
        c.setdefault("http_config", {}).setdefault("authorization", {"type": "Bearer"})
        c["http_config"]["authorization"]["credentials_file"] = str(token_file)
    doc["receivers"] = list(receivers.values())
    return doc


def prometheus_config(doc: dict[str, Any], settings: Settings, rule_paths: list[Path]) -> dict[str, Any]:
    a = settings.alerting
    doc["global"] = {
        **(doc.get("global") or {}),
        "scrape_interval": duration(a.scrape_interval_s),
        "evaluation_interval": duration(a.evaluation_interval_s),
    }
    doc["rule_files"] = [str(p) for p in rule_paths]
    doc["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(a.alertmanager_targets)}]}]}
    targets = {"rayapp-serving": a.serving_targets, "ray": a.ray_targets}
    for job in doc.get("scrape_configs", []):
        if job.get("job_name") in targets:
            labels = (job.get("static_configs") or [{}])[0].get("labels")
            static: dict[str, Any] = {"targets": list(targets[job["job_name"]])}
            if labels:
                static["labels"] = labels
            job["static_configs"] = [static]
            # a scrape must finish within its interval
            if a.scrape_interval_s < 10:
                job["scrape_timeout"] = duration(a.scrape_interval_s)
    return doc


def render_configs(settings: Settings, out_dir: Path | None = None) -> Rendered:
    """Write prometheus.yml, alertmanager.yml and rules/*.yml for this installation."""
    src = deploy_dir(settings)
    a = settings.alerting
    out = out_dir or (Path(a.out_dir).expanduser() if a.out_dir else settings.state_path / "alerting")
    (out / "rules").mkdir(parents=True, exist_ok=True)
    header = f"# Rendered by `rayapp alerting render` from {src} with conf/alerting/; do not edit.\n"
    rule_paths = []
    for group in RULE_GROUPS:
        doc = scale_rules(_load(src / "rules" / f"{group}.yml"), a.for_scale)
        path = out / "rules" / f"{group}.yml"
        _dump(path, header, doc)
        rule_paths.append(path.resolve())
    token = settings.alert_token_path
    created = ensure_token(token)
    prom = out / "prometheus.yml"
    _dump(prom, header, prometheus_config(_load(src / "prometheus.yml"), settings, rule_paths))
    am = out / "alertmanager.yml"
    _dump(am, header, alertmanager_config(_load(src / "alertmanager.yml"), settings, token.resolve()))
    notes = []
    for label, f in (
        ("slack.api_url_file", a.slack.api_url_file),
        ("slack.info_api_url_file", a.slack.info_api_url_file),
        ("email.auth_password_file", a.email.auth_password_file),
    ):
        if f and not Path(f).expanduser().is_file():
            notes.append(f"alerting.{label}: {f} does not exist yet (Alertmanager reads it when it sends)")
    return Rendered(out.resolve(), prom.resolve(), am.resolve(), rule_paths, token.resolve(), created, notes)


@dataclass
class CheckResult:
    tool: str
    target: str
    ok: bool | None  # None: the tool is not installed
    output: str


def check_configs(rendered: Rendered) -> list[CheckResult]:
    """promtool check config (which checks the rules it loads) and amtool check-config."""
    results = []
    for tool, args, target in (
        ("promtool", ["check", "config", str(rendered.prometheus)], rendered.prometheus),
        ("amtool", ["check-config", str(rendered.alertmanager)], rendered.alertmanager),
    ):
        exe = shutil.which(tool)
        if exe is None:
            results.append(CheckResult(tool, str(target), None, f"{tool} is not installed"))
            continue
        p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)
        results.append(CheckResult(tool, str(target), p.returncode == 0, (p.stdout + p.stderr).strip()))
    return results
