"""Print the serving API's OpenAPI document without Ray, stores or a model.

`rayapp.serving.app.build_api` is the one place routes are defined (the Serve ingress calls it too),
so the schema built here is exactly the one `GET /openapi.json` answers. The service gets no
handles and no pool: building the app and its schema never calls them.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from rayapp.config import load_settings
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

    settings = load_settings([])
    metrics = ServingMetrics()
    service = PredictionService(settings, None, None, None, metrics, None)
    app = build_api(settings, service, metrics, background=False)
    json.dump(app.openapi(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
