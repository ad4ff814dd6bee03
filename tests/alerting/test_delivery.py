"""Alerts reach a person: real faults in a running app, scraped by a real Prometheus with the
repository's rules, routed by a real Alertmanager with the repository's routing, delivered to the
Slack stand-in (HTTP, Slack-format JSON) and the e-mail stand-in (SMTP), and resolved after the
fault is removed. Intervals are the test's configuration (conftest: scrape and evaluation every
1 s, every `for` x 0.05, group waits of 1-2 s), not edits of the files."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from rayapp.testing import wait_until

pytestmark = pytest.mark.timeout(900)


def _flaky_succeeded(pool, job: str = "flaky") -> bool:
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM pipeline_runs WHERE job = %s AND status = 'succeeded'", (job,))
        return int(row.fetchone()[0]) >= 2


def _severity_in_title(messages, severity: str) -> bool:
    return all(any(f"] {severity} " in a.get("title", "") for a in m.body.get("attachments", [])) for m in messages)


def _feed(app_url: str) -> dict:
    r = httpx.get(f"{app_url}/alerts", params={"limit": 200}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_real_faults_reach_slack_and_email_by_severity_and_resolve(
    alert_stack, app_url, serving_redis, fault_file, pool
):
    stack = alert_stack
    wait_until(stack.targets_up, 60, ignore=(httpx.HTTPError,), what="Prometheus to scrape the app")
    wait_until(lambda: _flaky_succeeded(pool), 60, what="the flaky job to succeed before the fault")
    healthy = {a["labels"]["alertname"] for a in stack.firing()}
    assert not healthy & {"RayappRedisDown", "RayappPipelineRunsFailing", "RayappPipelineJobStale"}, healthy

    # ---- faults: the app's Redis stops (feature lookups fall back), the flaky job fails ---------
    t0 = time.time()
    fault_file.touch()
    serving_redis.stop()
    redis_slack = wait_until(lambda: stack.slack.find("RayappRedisDown", "firing", t0), 120, what="RedisDown on Slack")
    redis_mail = wait_until(lambda: stack.smtp.find("RayappRedisDown", "firing", t0), 120, what="RedisDown by e-mail")
    # the app kept answering: lookups fell back to the offline store
    wait_until(
        lambda: "rayapp_feature_fallback_total{" in httpx.get(f"{app_url}/metrics", timeout=10).text,
        60,
        what="predictions served from the offline store while Redis is down",
    )
    failing_slack = wait_until(
        lambda: stack.slack.find("RayappPipelineRunsFailing", "firing", t0), 120, what="RunsFailing on Slack"
    )
    stale_mail = wait_until(
        lambda: stack.smtp.find("RayappPipelineJobStale", "firing", t0), 120, what="JobStale by e-mail"
    )
    stale_slack = wait_until(
        lambda: stack.slack.find("RayappPipelineJobStale", "firing", t0), 120, what="JobStale on Slack"
    )
    # high alerts go to Slack and e-mail, medium ones to Slack only; each says its severity
    assert _severity_in_title(redis_slack, "high") and _severity_in_title(stale_slack, "high")
    assert _severity_in_title(failing_slack, "medium")
    time.sleep(3)  # over a group interval: an e-mail for the medium alert would have been sent
    assert not stack.smtp.find("RayappPipelineRunsFailing", "firing")
    # the Slack messages went to the webhook URL from the secret file, to the configured channel
    assert all(m.body["path"].endswith("/services/T000/B000/rayapp-test") for m in redis_slack)
    assert all(m.body.get("channel") == "#rayapp-alerts" for m in redis_slack + stale_slack + failing_slack)
    for mail, summary, anchor in (
        (redis_mail[0].body, "the online store (Redis) does not answer", "rayappredisdown"),
        (stale_mail[0].body, "job flaky has not succeeded", "rayapppipelinejobstale"),
    ):
        text = mail["message"].get_body(preferencelist=("plain",)).get_content()
        assert mail["to"] == ["oncall@localhost"] and "high" in str(mail["message"]["subject"])
        assert summary in text and f"runbook: docs/OPERATIONS.md#{anchor}" in text
    # the in-app feed has them too, with their severity
    active = wait_until(
        lambda: (
            {a["alertname"]: a for a in _feed(app_url)["active"]}
            if {"RayappRedisDown", "RayappPipelineJobStale"} <= {a["alertname"] for a in _feed(app_url)["active"]}
            else None
        ),
        60,
        what="the feed to list the firing alerts",
    )
    assert active["RayappRedisDown"]["severity"] == "high"
    assert active["RayappPipelineJobStale"]["severity"] == "high"
    assert active["RayappRedisDown"]["runbook"] == "docs/OPERATIONS.md#rayappredisdown"

    # ---- recovery: Redis back, the job succeeds again --------------------------------------------
    t1 = time.time()
    serving_redis.start()
    fault_file.unlink()
    wait_until(lambda: stack.slack.find("RayappRedisDown", "resolved", t1), 120, what="RedisDown resolved on Slack")
    wait_until(lambda: stack.smtp.find("RayappRedisDown", "resolved", t1), 120, what="RedisDown resolved mail")
    wait_until(lambda: stack.slack.find("RayappPipelineRunsFailing", "resolved", t1), 120, what="RunsFailing resolved")
    wait_until(lambda: stack.smtp.find("RayappPipelineJobStale", "resolved", t1), 120, what="JobStale resolved mail")
    wait_until(
        lambda: (
            not {"RayappRedisDown", "RayappPipelineJobStale", "RayappPipelineRunsFailing"}
            & {a["alertname"] for a in _feed(app_url)["active"]}
        ),
        60,
        what="the feed to show the alerts resolved",
    )
    recent = {(a["alertname"], a["status"]) for a in _feed(app_url)["recent"]}
    assert ("RayappRedisDown", "resolved") in recent and ("RayappPipelineJobStale", "resolved") in recent


def test_serving_down_inhibits_the_medium_serving_alerts_it_causes(alert_stack):
    """Alerts posted straight to Alertmanager's API, so the repository's inhibition rule is what
    is tested: with RayappServingDown (high) firing, a medium serving alert is suppressed and never
    delivered, while a medium alert of another area is."""
    stack = alert_stack
    t0 = time.time()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def alert(name: str, severity: str, area: str) -> dict:
        return {
            "labels": {"alertname": name, "severity": severity, "area": area, "test": "inhibition"},
            "annotations": {"summary": f"{name} (inhibition test)", "runbook": "docs/OPERATIONS.md#x"},
            "startsAt": now,
        }

    r = httpx.post(
        f"{stack.alertmanager_url}/api/v2/alerts",
        json=[
            alert("RayappServingDown", "high", "serving"),
            alert("RayappHighErrorRate", "medium", "serving"),
            alert("RayappLiveAccuracyDegraded", "medium", "model"),
            alert("RayappDriftDetected", "info", "model"),
        ],
        timeout=10,
    )
    assert r.status_code == 200, r.text

    def states() -> dict[str, dict]:
        body = httpx.get(f"{stack.alertmanager_url}/api/v2/alerts", params={"filter": 'test="inhibition"'}).json()
        return {a["labels"]["alertname"]: a["status"] for a in body}

    st = wait_until(lambda: s if len(s := states()) == 4 and s["RayappHighErrorRate"]["inhibitedBy"] else None, 30)
    assert st["RayappHighErrorRate"]["state"] == "suppressed"
    assert not st["RayappLiveAccuracyDegraded"]["inhibitedBy"] and not st["RayappServingDown"]["inhibitedBy"]
    wait_until(lambda: stack.slack.find("RayappServingDown", "firing", t0), 60, what="ServingDown on Slack")
    wait_until(lambda: stack.smtp.find("RayappServingDown", "firing", t0), 60, what="ServingDown by e-mail")
    wait_until(lambda: stack.slack.find("RayappLiveAccuracyDegraded", "firing", t0), 60, what="the model alert")
    # info goes to the low-noise channel only, batched per area, never by e-mail
    info = wait_until(
        lambda: [m for m in stack.slack.messages() if m.at >= t0 and "RayappDriftDetected" in json.dumps(m.body)],
        60,
        what="the info notice",
    )
    assert {m.body["channel"] for m in info} == {"#rayapp-info"}
    assert not stack.smtp.find("RayappLiveAccuracyDegraded", "firing", t0)
    time.sleep(3)  # more than a group interval: a suppressed alert would have been sent by now
    assert not stack.slack.find("RayappHighErrorRate", "firing", t0)
    ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    resolved = [{**a, "endsAt": ended} for a in (alert("RayappServingDown", "high", "serving"),)]
    httpx.post(f"{stack.alertmanager_url}/api/v2/alerts", json=resolved, timeout=10).raise_for_status()
