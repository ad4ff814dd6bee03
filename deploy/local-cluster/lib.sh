# Shared by up.sh and node.sh (sourced; needs DIR set). Addresses and the nodes' environment.
# shellcheck shell=bash
say() { echo "local-cluster: $*"; }
fail() { echo "local-cluster: error: $*" >&2; exit 1; }

# start NAME NS CMD...: a detached process group in namespace NS, its pid in pids/NAME
start() {
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" setsid "$@" >> "$DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$DIR/pids/$name"
}

wait_port() {  # wait_port HOST PORT WHAT
  for _ in $(seq 1 240); do
    python - "$1" "$2" <<'PY' && return 0
import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
    sleep 0.5
  done
  fail "$3 did not open $1:$2 (logs: $DIR/logs)"
}

node_env() {  # node_env NAME: env(1) arguments for a node's processes (its own HOME and state dir)
  local name=$1
  echo "-i PATH=$(cat "$DIR/path") HOME=$DIR/$name/home LANG=C.UTF-8 RAYAPP_STATE_DIR=$DIR/$name/state"
  echo "RAYAPP_CONF_DIR=$(cat "$DIR/repo")/conf"
  grep -v '^#' "$DIR/node.env" | tr '\n' ' '
}
