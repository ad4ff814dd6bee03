"""Ray Job entry point: `ray job submit --working-dir . -- python jobs/features.py [--start ISO] [key=value ...]`.

Runs `rayapp features build` on the cluster the job is submitted to (RAY_ADDRESS is set by Ray
Jobs, so the chunk tasks spread over its nodes). `python jobs/features.py online-check --hours 24`
runs the consistency check instead.
"""

import sys

from rayapp.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    action = args[:1] if args[:1] in (["build"], ["online-check"]) else ["build"]
    rest = args[1:] if action == args[:1] else args
    sys.exit(main(["features", *action, *rest]))
