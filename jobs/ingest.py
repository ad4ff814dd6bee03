"""Ray Job entry point: `ray job submit --working-dir . -- python jobs/ingest.py start=2024-01-01`.

Inside a submitted job RAY_ADDRESS points at the cluster, so `ray.address` resolves to it and the
(source, time window) partitions spread over the cluster's nodes. The exit status is the
command's: non-zero when a source failed (the job shows as failed; the others were still loaded).
"""

import sys

from rayapp.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", "--no-progress", *sys.argv[1:]]))
