"""Ray Job entry point: `ray job submit --working-dir . -- python jobs/ablation.py --period news`."""

import sys

from rayapp.cli import main

if __name__ == "__main__":
    sys.exit(main(["ablate", *sys.argv[1:]]))
