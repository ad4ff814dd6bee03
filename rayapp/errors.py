"""Errors that the CLI turns into one clear line and a non-zero exit instead of a traceback."""


class RayappError(RuntimeError):
    """Base of the user-facing errors."""

    exit_code = 1


class StoreUnavailable(RayappError):
    """A store (PostgreSQL, Redis, object store) cannot be reached."""

    exit_code = 3
