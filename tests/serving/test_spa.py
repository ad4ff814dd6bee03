"""The dashboard's SPA fallback (rayapp/serving/spa.py) on the app's real routes.

The app is `build_api` itself (as `frontend/scripts/dump_openapi.py` builds it: no Ray, stores or
model; none of the routes called here touches them) over a small dashboard build in a temporary
folder, driven in-process. The browser half (every page by its own URL, and a reload, against the
real Serve app) is tests/e2e.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

INDEX = "<!doctype html><title>rayapp</title><div id=root></div>"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# /health stands in for a page that is also a GET route of the API (as /models is): cheap to call
PAGES = ["/", "/predict", "/analytics", "/system", "/models", "/health"]


@pytest.fixture(scope="module")
def client(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

    dist = tmp_path_factory.mktemp("dist")
    (dist / "index.html").write_text(INDEX)
    (dist / "assets").mkdir()
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    (dist / "config.json").write_text('{"links": {}}')
    (dist / "pages.json").write_text(json.dumps([{"path": p} for p in PAGES]))
    s = settings.model_copy(deep=True)
    s.serving.static_dir = str(dist)
    metrics = ServingMetrics()
    app = build_api(s, PredictionService(s, None, None, None, metrics, None), metrics, background=False)
    return TestClient(app)  # not entered: no lifespan, so no model refresh against absent handles


def is_index(r: Any) -> bool:
    return r.status_code == 200 and r.text == INDEX and r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/", "/predict", "/analytics", "/system", "/models", "/system/", "/no/such/page"])
def test_pages_and_unknown_non_api_paths_answer_index_html(client: TestClient, path: str) -> None:
    r = client.get(path, headers=HTML)
    assert is_index(r), (path, r.status_code, r.text[:200])
    if path != "/":
        assert r.headers["cache-control"] == "no-cache"


def test_pages_answer_index_without_an_html_accept_too(client: TestClient) -> None:
    # a reload by curl or a crawler: /analytics is no API path
    for path in ("/analytics", "/system"):
        assert is_index(client.get(path, headers={"Accept": "*/*"})), path
    assert client.head("/system").status_code == 200
    # /predict is an API route (POST): an API client's GET is told so (405 naming POST, issue 19);
    # only a browser's navigation gets the page
    r = client.get("/predict", headers={"Accept": "*/*"})
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    assert is_index(client.get("/predict", headers=HTML))


def test_real_files_are_served_as_files(client: TestClient) -> None:
    r = client.get("/assets/index-abc.js", headers=HTML)
    assert r.status_code == 200 and r.text == "console.log(1)"
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert client.get("/config.json").json() == {"links": {}}


def test_api_routes_are_unaffected(client: TestClient) -> None:
    # a fetch of a route that is also a page name gets the API's answer; a navigation, the page
    assert client.get("/health", headers={"Accept": "application/json"}).json() == {"status": "ok"}
    assert client.get("/health").json() == {"status": "ok"}
    assert is_index(client.get("/health", headers=HTML))
    assert client.get("/openapi.json", headers=HTML).json()["info"]["title"] == "rayapp"
    docs = client.get("/docs", headers=HTML)  # an HTML route of the API, not a dashboard page
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    r = client.post("/predict", json={"symbol": "BTCUSDT"})
    assert r.status_code in (401, 503) and "detail" in r.json(), r.text  # the API's POST /predict


@pytest.mark.parametrize(
    "path", ["/predictions/a/b", "/explain/not-an-id/x", "/admin/nope", "/pipeline/nope", "/ws/nope", "/docs/x"]
)
def test_unknown_api_paths_stay_json_404(client: TestClient, path: str) -> None:
    for headers in ({"Accept": "application/json"}, HTML):
        r = client.get(path, headers=headers)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert r.json()["detail"] == "Not Found" and r.json()["error_id"]  # every error has its id


def test_no_file_outside_the_build_is_served(client: TestClient, tmp_path: Path) -> None:
    r = client.get("/..%2F..%2Fetc%2Fpasswd", headers={"Accept": "*/*"})
    assert "root:" not in r.text


def test_api_prefixes_come_from_the_routes(client: TestClient) -> None:
    from rayapp.serving.spa import api_prefixes

    prefixes = api_prefixes(client.app.router.routes)  # type: ignore[attr-defined]
    assert {"predictions", "explain", "ws", "docs", "openapi.json", "models", "pipeline"} <= prefixes
    assert not {"analytics", "system", "assets", ""} & prefixes
