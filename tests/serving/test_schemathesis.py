"""Schemathesis against the app's own OpenAPI spec: valid and invalid inputs, zero 5xx.

Kept small (a fixed number of examples per mode across all operations) to fit the test budget;
the same check scales up with `schemathesis run URL/openapi.json --checks not_a_server_error`.
"""

from __future__ import annotations

import hypothesis
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode


def test_no_server_errors_on_generated_requests(app_url: str, auth: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{app_url}/openapi.json")
    server_errors: list[str] = []
    calls: list[str] = []

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @hypothesis.settings(
            max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        @given(case=schema.as_strategy(mode))
        def run(case: schemathesis.Case) -> None:
            # the key is sent so mutating endpoints are exercised past the auth check
            resp = case.call(base_url=app_url, headers={**(case.headers or {}), **auth}, timeout=30)
            calls.append(f"{case.method} {case.path}")
            if resp.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:200]}")

        run()
    assert len(set(calls)) >= 8, sorted(set(calls))
    assert not server_errors, server_errors[:5]
