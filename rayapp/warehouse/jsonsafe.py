"""One rule for what goes into a jsonb column or a JSON report: NaN and inf become null (JSON has
neither), numpy scalars and arrays become Python numbers and lists, datetimes ISO strings, keys
strings."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np


def json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj
