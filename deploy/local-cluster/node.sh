#!/usr/bin/env bash
# One worker node of the local cluster (up.sh): start it (again) or kill it.
#   node.sh start w1|w2         ray start --block in the node's namespace, joining the head
#   node.sh kill-raylet w1|w2   SIGKILL the node's raylet (a node failure: its workers die with it)
#   node.sh stop w1|w2          SIGKILL everything of the node (before a restart)
set -euo pipefail
DIR=${RAYAPP_CLUSTER_DIR:-/tmp/rayapp-cluster}
# shellcheck source=deploy/local-cluster/lib.sh
. "$(dirname "$0")/lib.sh"
action=${1:-}; n=${2:-}
case "$n" in w1|w2) ;; *) fail "node.sh: node must be w1 or w2, got '${n}'" ;; esac
ns=rayapp-$n
addr=$(awk -v ns="$ns" '$1 == ns {print $2}' "$DIR/nodes")
head=$(awk '$1 == "rayapp-head" {print $2}' "$DIR/nodes")
raylets() { for pid in $(ip netns pids "$ns"); do
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q '/raylet/raylet ' && echo "$pid"; done; true; }
case "$action" in
  start)
    say "Ray worker $n on $addr ($(cat "$DIR/worker_cpus") CPUs)"
    mkdir -p "$DIR/$n/home" "$DIR/$n/state" "$DIR/$n/tmp"
    # shellcheck disable=SC2046
    start "ray-$n" "$ns" env $(node_env "$n") ray start --block --address="$head:6379" \
      --node-ip-address="$addr" --num-cpus="$(cat "$DIR/worker_cpus")" --resources="{\"node:$n\": 1}" \
      --temp-dir="$DIR/$n/tmp" --disable-usage-stats
    ;;
  kill-raylet)
    pids=$(raylets)
    [ -n "$pids" ] || fail "no raylet runs on $n"
    # shellcheck disable=SC2086
    kill -KILL $pids
    say "killed the raylet of $n (pid $pids)"
    ;;
  stop)
    for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
    say "stopped $n"
    ;;
  *) sed -n '2,5p' "$0"; exit 2 ;;
esac
