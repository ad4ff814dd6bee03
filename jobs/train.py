"""Ray Job entry point: `ray job submit --working-dir . -- python jobs/train.py tune.num_samples=50`.

Inside a submitted job RAY_ADDRESS points at the cluster, so `ray.address` resolves to it and the
Tune trials spread over the cluster's nodes.
"""

import sys

from rayapp.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
