"""The user-facing errors: each carries the exit code `rayapp` ends with.

Stage and flow code raises one of these (or a subclass of its own); `rayapp.cli.main` is the one
place that prints it (one `error:` line on stderr) and turns it into the exit code. Anything else
that escapes is a bug and keeps its traceback.

Exit codes: 0 ok; 1 the work ran and found a problem (a source failed, values mismatch, no data to
build from); 2 bad input (arguments, configuration, files, a model or dataset that cannot be
used); 3 a store (PostgreSQL, Redis, object store) is unreachable; 130 interrupted.
"""


class RayappError(RuntimeError):
    """Base of the user-facing errors: the work failed (exit 1)."""

    exit_code = 1


class InputError(RayappError, ValueError):
    """Bad input: an argument, a configuration value, a file or a model that cannot be used (exit 2)."""

    exit_code = 2


class StoreUnavailable(RayappError):
    """A store (PostgreSQL, Redis, object store) cannot be reached (exit 3)."""

    exit_code = 3
