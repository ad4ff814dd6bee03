"""Lazy public APIs for the stage packages.

A stage's `__init__.py` names what other packages may use; importing the package must stay cheap
(the `rayapp` command imports every stage's `commands` module, and with it the stage package, on
every start), so each name is imported from its module on first use (PEP 562). The same names are
imported under `TYPE_CHECKING` in the package so that mypy checks every cross-stage call.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, from {module: (name, ...)}."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
