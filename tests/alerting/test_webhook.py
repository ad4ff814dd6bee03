"""The in-app alert feed's edge: POST /alerts/webhook takes only authenticated, valid Alertmanager
notifications (401 / 422 otherwise, nothing stored), is idempotent, and GET /alerts shows the
firing ones first and the resolved ones in the history."""

from __future__ import annotations

import uuid

import httpx
import pytest

from rayapp.testing import wait_until


@pytest.fixture(scope="module")
def token(world) -> str:
    from rayapp.monitoring import render_configs

    path = world.settings.alert_token_path
    if not path.exists():
        render_configs(world.settings, path.parent.parent / "alerting-webhook-test")  # creates the token
    return path.read_text().strip()


def _note(fp: str, status: str = "firing", severity: str = "medium", **extra) -> dict:
    alert = {
        "status": status,
        "labels": {"alertname": f"WebhookTest{fp[:6]}", "severity": severity, "area": "serving"},
        "annotations": {"summary": "webhook test alert", "runbook": "docs/OPERATIONS.md#x"},
        "startsAt": "2026-12-01T10:00:00Z",
        "endsAt": "2026-12-01T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.test/graph",
        "fingerprint": fp,
    }
    body = {"version": "4", "groupKey": '{}:{alertname="x"}', "status": status, "receiver": "rayapp-feed"}
    return {**body, "alerts": [alert], "truncatedAlerts": 0, **extra}


def _rows(pool, fp: str) -> list[tuple]:
    with pool.connection() as conn:
        return conn.execute("SELECT status, notifications FROM alerts WHERE fingerprint = %s", (fp,)).fetchall()


def _post(app_url: str, body, token: str | None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{app_url}/alerts/webhook", json=body, headers=headers, timeout=10, **kw)


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer"])
def test_unauthenticated_posts_are_refused_and_stored_nowhere(app_url, token, pool, auth):
    fp = uuid.uuid4().hex[:16]
    headers = {"Authorization": auth} if auth else {}
    r = httpx.post(f"{app_url}/alerts/webhook", json=_note(fp), headers=headers, timeout=10)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in r.json()["detail"]
    assert _rows(pool, fp) == []


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b["alerts"][0]["labels"].update(severity="critical"), "severity"),
        (lambda b: b["alerts"][0]["labels"].pop("alertname"), "alertname"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "startsAt"),
        (lambda b: b["alerts"][0].update(fingerprint="not hex!"), "fingerprint"),
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b["alerts"][0].update(status="pending"), "status"),
    ],
)
def test_invalid_notifications_are_422_naming_the_field_and_stored_nowhere(app_url, token, pool, mutate, where):
    fp = uuid.uuid4().hex[:16]
    body = _note(fp)
    mutate(body)
    r = _post(app_url, body, token)
    assert r.status_code == 422, r.text
    assert where in r.text
    assert _rows(pool, fp) == []


def test_a_body_that_is_not_json_is_422(app_url, token):
    r = httpx.post(
        f"{app_url}/alerts/webhook",
        content=b"{not json",
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 422


def test_a_notification_is_stored_once_then_updated_and_listed(app_url, token, pool):
    fp = uuid.uuid4().hex[:16]
    r = _post(app_url, _note(fp, severity="high"), token)
    assert r.status_code == 200 and r.json() == {"received": 1, "new": 1, "updated": 0}
    again = _post(app_url, _note(fp, severity="high"), token)  # a repeat (or a retried delivery)
    assert again.json() == {"received": 1, "new": 0, "updated": 1}
    assert _rows(pool, fp) == [("firing", 2)]
    feed = httpx.get(f"{app_url}/alerts", timeout=10).json()
    mine = [a for a in feed["active"] if a["fingerprint"] == fp]
    assert len(mine) == 1 and mine[0]["severity"] == "high" and mine[0]["summary"] == "webhook test alert"
    assert mine[0]["ends_at"] is None and feed["counts"]["high"] >= 1
    order = [a["severity"] for a in feed["active"]]
    assert order == sorted(order, key=["high", "medium", "info"].index)  # most severe first

    assert _post(app_url, _note(fp, status="resolved", severity="high"), token).status_code == 200
    assert _rows(pool, fp) == [("resolved", 3)]
    feed = httpx.get(f"{app_url}/alerts", timeout=10).json()
    assert fp not in {a["fingerprint"] for a in feed["active"]}
    done = [a for a in feed["recent"] if a["fingerprint"] == fp]
    assert done[0]["status"] == "resolved" and done[0]["ends_at"].startswith("2026-12-01T10:05")
    # a late "firing" repeat does not reopen a resolved occurrence
    _post(app_url, _note(fp, severity="high"), token)
    assert _rows(pool, fp)[0][0] == "resolved"


def test_get_alerts_validates_its_query(app_url):
    assert httpx.get(f"{app_url}/alerts", params={"limit": 0}, timeout=10).status_code == 422
    assert httpx.get(f"{app_url}/alerts", params={"limit": "x"}, timeout=10).status_code == 422


def test_without_a_token_file_the_webhook_is_off(app_url, token, world, pool):
    path = world.settings.alert_token_path
    moved = path.with_suffix(".moved")
    path.rename(moved)
    try:
        fp = uuid.uuid4().hex[:16]
        r = wait_until(lambda: (x := _post(app_url, _note(fp), token)).status_code == 503 and x, 10)
        assert "no token" in r.json()["detail"] and _rows(pool, fp) == []
    finally:
        moved.rename(path)
