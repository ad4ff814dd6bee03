"""Ray Job entry point of `rayapp run`: Serve plus the scheduler on the cluster.

    ray job submit --working-dir . -- python jobs/run.py --detach
    ray job submit --working-dir . -- python jobs/run.py            # foreground: `ray job stop` ends it

Inside a submitted job RAY_ADDRESS points at the cluster, so `ray.address` resolves to it. With
--detach the job returns once Serve is deployed and the scheduler is up (both outlive it;
`rayapp schedule stop` ends them); without it the job runs until it is stopped, and stopping it
(SIGTERM from `ray job stop`) cancels the runs in flight and shuts both down.
"""

import sys

from rayapp.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
