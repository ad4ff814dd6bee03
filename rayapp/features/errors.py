"""Why the features stage cannot do what was asked: each error is one clear line and an exit code."""

from __future__ import annotations

from rayapp.errors import RayappError


class FeatureInputError(RayappError, ValueError):
    """The silver data cannot make features (e.g. no candles for the symbol): exit 1."""


class FeatureSetNotFound(RayappError, KeyError):
    """No such feature set in the store yet (nothing was built): exit 1."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is read by people.
        return str(self.args[0]) if self.args else ""
