#!/usr/bin/env bash
# Tear down what up.sh built: every process it started (by process group, newest first), the
# namespaces, the bridge and RAYAPP_CLUSTER_DIR (--keep leaves the directory, e.g. for its logs).
# Safe to run twice, and after a failed up.sh.
set -uo pipefail

DIR=${RAYAPP_CLUSTER_DIR:-/tmp/rayapp-cluster}
BRIDGE=${RAYAPP_CLUSTER_BRIDGE:-rayapp-br0}
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

stop_group() {  # stop_group PIDFILE: SIGTERM its process group, SIGKILL what is left after 10 s
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

if [ -d "$DIR/pids" ]; then
  # the Ray nodes first (each in parallel: a raylet's SIGTERM drain takes seconds), then the
  # services they used, also in parallel
  for group in "ray-w2 ray-w1 ray-head" "feed mlflow s3 redis postgres"; do
    for name in $group; do
      [ -f "$DIR/pids/$name" ] && stop_group "$DIR/pids/$name" &
    done
    wait
  done
fi
# anything still running inside a namespace of ours (a raylet's orphans)
for ns in rayapp-w2 rayapp-w1 rayapp-head rayapp-feed rayapp-svc; do
  if ip netns list | grep -qw "$ns"; then
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  fi
done
ip link del "$BRIDGE" 2>/dev/null || true
if [ "$KEEP" = 0 ]; then
  rm -rf "$DIR"
else
  rm -f "$DIR/cluster.env"
fi
echo "local-cluster: down"
