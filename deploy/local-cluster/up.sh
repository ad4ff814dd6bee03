#!/usr/bin/env bash
# A multi-node rayapp topology on one Linux machine, with hosts that are really separate: each
# "host" is a network namespace with its own address on a private bridge, its own Ray temp dir
# and its own RAYAPP_STATE_DIR, so nothing is shared through the network stack or rayapp's state.
#
#   rayapp-svc   10.88.0.2   PostgreSQL (Debian), Redis (Debian), moto S3 server, MLflow server
#   rayapp-head  10.88.0.10  Ray head (no CPUs for tasks: the work lands on the workers)
#   rayapp-w1    10.88.0.11  Ray worker
#   rayapp-w2    10.88.0.12  Ray worker
#   rayapp-feed  10.88.0.20  the market replay feed (`rayapp replay`), the "public APIs"
#   (this host)  10.88.0.1   the bridge: the operator's machine (ray job submit, serve deploy)
#
# Every node gets the services only as URLs and credentials in RAYAPP_* variables; no embedded
# PostgreSQL or Redis starts anywhere (tests/cluster asserts it). Needs root (ip netns), iproute2,
# Debian's postgresql and redis-server, and the project installed (`pip install -e '.[dev]'`).
#
#   deploy/local-cluster/up.sh [--data DIR]      # then: source $RAYAPP_CLUSTER_DIR/cluster.env
#   RAYAPP_CLUSTER_WORKER_CPUS=1 deploy/local-cluster/up.sh   # CPUs each worker offers Ray (default 2)
#   deploy/local-cluster/down.sh
#
# RAYAPP_CLUSTER_DIR (default /tmp/rayapp-cluster) holds the nodes' directories, logs, pid files
# and cluster.env (the addresses, URLs and the cluster's Ray token for the operator's shell).
set -euo pipefail

DIR=${RAYAPP_CLUSTER_DIR:-/tmp/rayapp-cluster}
NET=${RAYAPP_CLUSTER_NET:-10.88.0}
BRIDGE=${RAYAPP_CLUSTER_BRIDGE:-rayapp-br0}
WORKER_CPUS=${RAYAPP_CLUSTER_WORKER_CPUS:-2}
DATA=${RAYAPP_CLUSTER_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/data}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "up.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# shellcheck source=deploy/local-cluster/lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
command -v ip >/dev/null || fail "iproute2 (ip) is not installed"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || fail "Debian postgresql is not installed (apt-get install postgresql)"
command -v redis-server >/dev/null || fail "redis-server is not installed (apt-get install redis-server)"
command -v ray >/dev/null || fail "ray is not installed (pip install -e '.[dev]')"
command -v moto_server >/dev/null || fail "moto_server is not installed (pip install -e '.[dev]')"
[ -e "$DIR/cluster.env" ] && fail "$DIR/cluster.env exists: a cluster is up (down.sh first)"

mkdir -p "$DIR"/{logs,pids,secrets}
rm -f "$DIR/nodes"
chmod 700 "$DIR/secrets"
secret() { python -c 'import secrets; print(secrets.token_hex(16))'; }
PG_PW=$(secret); REDIS_PW=$(secret); S3_KEY=rayapp; S3_SECRET=$(secret); RAY_TOKEN=$(secret)

SVC=$NET.2; HEAD=$NET.10; FEED=$NET.20
declare -A ADDR=([rayapp-svc]=$SVC [rayapp-head]=$HEAD [rayapp-w1]=$NET.11 [rayapp-w2]=$NET.12 [rayapp-feed]=$FEED)

# ---- network: a bridge on this host, one namespace per node, a veth pair each ----------------
say "network $NET.0/24 on bridge $BRIDGE"
ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
i=0
for ns in rayapp-svc rayapp-head rayapp-w1 rayapp-w2 rayapp-feed; do
  i=$((i + 1))
  ip netns add "$ns"
  ip link add "rbh$i" type veth peer name "rbn$i"
  ip link set "rbn$i" netns "$ns"
  ip link set "rbh$i" master "$BRIDGE"
  ip link set "rbh$i" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link set "rbn$i" name eth0
  ip netns exec "$ns" ip addr add "${ADDR[$ns]}/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip route add default via "$NET.1"
  echo "$ns ${ADDR[$ns]}" >> "$DIR/nodes"
done

# ---- services host ---------------------------------------------------------------------------
say "PostgreSQL (Debian $("$PGBIN/postgres" --version | awk '{print $3}')) on $SVC:5432"
install -d -o postgres -g postgres -m 700 "$DIR/pg" "$DIR/pgsock"
echo "$PG_PW" > "$DIR/pg/pw" && chown postgres "$DIR/pg/pw" && chmod 600 "$DIR/pg/pw"
runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$DIR/pg/pw" > "$DIR/logs/initdb.log"
rm -f "$DIR/pg/pw"
echo "host all all $NET.0/24 scram-sha-256" >> "$DIR/pg/data/pg_hba.conf"
start postgres rayapp-svc runuser -u postgres -- "$PGBIN/postgres" -D "$DIR/pg/data" \
  -c "listen_addresses=$SVC" -c "unix_socket_directories=$DIR/pgsock" -c max_connections=200
wait_port "$SVC" 5432 postgres
for db in rayapp mlflow; do
  runuser -u postgres -- psql -h "$DIR/pgsock" -qc "CREATE DATABASE $db" >/dev/null
done

# What needs nothing of each other starts at once and is waited for below: each start is
# mostly a Python import or a server's own setup, so overlapping them shortens up.sh.
say "Redis on $SVC:6379 (password)"
mkdir -p "$DIR/redis"
start redis rayapp-svc redis-server --bind "$SVC" --port 6379 --requirepass "$REDIS_PW" --dir "$DIR/redis" \
  --save "" --appendonly no --protected-mode no

say "S3-compatible endpoint (moto server) on $SVC:9000"
start s3 rayapp-svc env AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET" moto_server -H "$SVC" -p 9000

# ---- the feed: the replay server stands for the public market APIs --------------------------
if [ -d "$DATA" ]; then
  say "replay feed on $FEED:8765 (data $DATA)"
  start feed rayapp-feed env RAYAPP_STATE_DIR="$DIR/feed/state" rayapp replay --data "$DATA" --host "$FEED" --port 8765
else
  say "no data folder at $DATA: no replay feed (ingest jobs need one)"
fi

# ---- Ray: the nodes see the services only through these variables ---------------------------
cat > "$DIR/node.env" <<EOF
RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$RAY_TOKEN
RAYAPP_DATABASE_URL=postgresql://postgres:$PG_PW@$SVC:5432/rayapp
RAYAPP_REDIS_URL=redis://:$REDIS_PW@$SVC:6379/0
RAYAPP_MLFLOW_URI=http://$SVC:5000
RAYAPP_S3_ENDPOINT=http://$SVC:9000
RAYAPP_S3_BUCKET=rayapp-bronze
RAYAPP_S3_ACCESS_KEY=$S3_KEY
RAYAPP_S3_SECRET_KEY=$S3_SECRET
RAYAPP_S3_REGION=us-east-1
AWS_ACCESS_KEY_ID=$S3_KEY
AWS_SECRET_ACCESS_KEY=$S3_SECRET
AWS_DEFAULT_REGION=us-east-1
MLFLOW_S3_ENDPOINT_URL=http://$SVC:9000
RAYAPP_API_KEY=$(secret)
RAY_SERVE_LOG_TO_STDERR=0
RAY_SERVE_DEFAULT_HTTP_HOST=0.0.0.0
RAY_agent_register_timeout_ms=120000
EOF
chmod 600 "$DIR/node.env"
echo "$PATH" > "$DIR/path"
echo "$REPO" > "$DIR/repo"
echo "$WORKER_CPUS" > "$DIR/worker_cpus"
for n in head w1 w2; do mkdir -p "$DIR/$n/home" "$DIR/$n/state" "$DIR/$n/tmp"; done

say "Ray head on $HEAD (GCS 6379, dashboard 8265, Serve HTTP 8000)"
# shellcheck disable=SC2046
start ray-head rayapp-head env $(node_env head) ray start --head --block --node-ip-address="$HEAD" --port=6379 \
  --dashboard-host=0.0.0.0 --dashboard-port=8265 --num-cpus=0 --temp-dir="$DIR/head/tmp" --disable-usage-stats

wait_port "$SVC" 6379 redis
wait_port "$SVC" 9000 moto
python - "$SVC" "$S3_KEY" "$S3_SECRET" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://{sys.argv[1]}:9000", aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1")
for b in ("rayapp-bronze", "rayapp-mlflow"):
    s3.create_bucket(Bucket=b)
EOF

say "MLflow tracking server on $SVC:5000 (backend PostgreSQL, artifacts s3://rayapp-mlflow)"
# No server-side job execution: it is MLflow's GenAI scoring (a job runner and seven Huey consumer
# processes, each importing MLflow); rayapp uses tracking and the registry only.
start mlflow rayapp-svc env MLFLOW_S3_ENDPOINT_URL="http://$SVC:9000" AWS_ACCESS_KEY_ID="$S3_KEY" \
  AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_DEFAULT_REGION=us-east-1 MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
  mlflow server --host "$SVC" --port 5000 --workers 1 \
  --backend-store-uri "postgresql+psycopg://postgres:$PG_PW@$SVC:5432/mlflow" \
  --artifacts-destination s3://rayapp-mlflow/artifacts --allowed-hosts "*"

if [ -d "$DATA" ]; then wait_port "$FEED" 8765 "replay feed"; fi
wait_port "$HEAD" 8265 "ray head dashboard"
for n in w1 w2; do
  "$(dirname "$0")/node.sh" start "$n"
done
wait_port "$SVC" 5000 mlflow

cat > "$DIR/cluster.env" <<EOF
# source this in the operator's shell (the bridge host $NET.1)
export RAYAPP_CLUSTER_DIR=$DIR
export RAY_HEAD_IP=$HEAD
export RAY_ADDRESS=http://$HEAD:8265
export RAYAPP_CLUSTER_GCS=$HEAD:6379
export RAYAPP_CLUSTER_SERVE=http://$HEAD:8000
export RAYAPP_CLUSTER_FEED=http://$FEED:8765
$(sed 's/^/export /' "$DIR/node.env")
EOF
chmod 600 "$DIR/cluster.env"
python - "$HEAD" "$RAY_TOKEN" <<'EOF' || fail "the workers did not join (logs: $DIR/logs)"
import json, sys, time, urllib.request
head, token = sys.argv[1], sys.argv[2]
for _ in range(240):
    try:
        req = urllib.request.Request(f"http://{head}:8265/nodes?view=summary", headers={"Authorization": f"Bearer {token}"})
        nodes = json.load(urllib.request.urlopen(req, timeout=5))["data"]["summary"]
        alive = [n for n in nodes if n["raylet"]["state"] == "ALIVE"]
        if len(alive) >= 3:
            print(f"local-cluster: {len(alive)} nodes alive")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit(1)
EOF
say "up: source $DIR/cluster.env"
