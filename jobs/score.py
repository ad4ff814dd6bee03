"""Entry point for `ray job submit -- python jobs/score.py [--limit N] [key=value ...]`.

Runs `rayapp score` on the cluster the job is submitted to (RAY_ADDRESS is set by Ray Jobs).
"""

import sys

from rayapp.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
