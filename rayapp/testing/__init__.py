"""Helpers shared by the test suite (tests/) and the speed scripts (benchmarks/), shipped with the
package the way pandas._testing or Ray's test utilities are.

For tests and benchmarks only: no product code imports this package (it sits in the top layer of
the import-linter layers contract, next to `rayapp.cli`, so `lint-imports` refuses any import of
it from another rayapp package). Like the stages it uses their public APIs only.

- `wait_until` (`rayapp.testing.wait`): poll a predicate until it holds, with a deadline and a
  clear failure; the one way a test waits for something to happen.
- `rayapp.testing.serving`: generated feature rows and a real XGBoost model registered as
  champion per the model contract (`seed_champion`), for the serving tests and benchmarks.
- `rayapp.testing.realdata`: the real files of ../shared/data loaded into silver, the news
  scored, for the real-data feature test and benchmarks/features.py.

Importing the package is cheap: each submodule imports its heavy dependencies where it uses them.
"""

from rayapp.testing.wait import WaitTimeout, wait_until

__all__ = ["WaitTimeout", "wait_until"]
