#!/usr/bin/env bash
# Runs, on this machine, the hub as a city runs it on three hosts: a 3-node NATS cluster
# (loopback only, sync_interval: always on each node, monitoring on) and two hub instances
# on it, with GOV_EVENTS, GOV_AUDIT and the feeds on 3 replicas. Kill a node or a hub and
# watch the rest carry on. Ctrl-C stops everything; the state stays under local-cluster/
# (or $LOCAL_CLUSTER_DIR) for the next run.
#
#   nodes n1 n2 n3   clients nats://127.0.0.1:14222-14224, monitoring http://127.0.0.1:18222-18224
#   hubs hub-1 hub-2 gRPC and HTTP on 127.0.0.1:50061 and 127.0.0.1:50062, development identity
#
# The two hubs share the command hash key and the audit signing key (generated here once);
# whichever holds a duty's lease supervises deadlines or sends the feeds (`hubctl status`
# names the holder). The departments are not isolated by NATS accounts here (one account),
# which is what accept_no_isolation says; deploy/cluster/ has the production setup.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup.sh nats-server
cargo build --locked -p hub
root=$(realpath -m "${LOCAL_CLUSTER_DIR:-local-cluster}")
mkdir -p "$root"
chmod 700 "$root"

# The secrets every instance on one log shares, made once.
if [ ! -f "$root/command-hash.key" ]; then
  python3 -c 'import os; print(os.urandom(32).hex(), end="")' > "$root/command-hash.key"
fi
if [ ! -f "$root/audit-signing.key" ]; then
  # An Ed25519 key as PKCS#8 PEM: the fixed DER prefix, then the 32-byte seed.
  python3 - "$root/audit-signing.key" <<'PY'
import base64, os, sys
der = bytes.fromhex("302e020100300506032b657004220420") + os.urandom(32)
body = base64.b64encode(der).decode()
with open(sys.argv[1], "w") as f:
    f.write("-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n")
PY
fi
chmod 600 "$root/command-hash.key" "$root/audit-signing.key"

urls=nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224
monitors=http://127.0.0.1:18222,http://127.0.0.1:18223,http://127.0.0.1:18224
hub=${CARGO_TARGET_DIR:-target}/debug/hub

# Every port free first: a node or hub left from an earlier run would answer in place of the
# new one.
python3 - <<'PY'
import socket, sys
busy = []
for port in (14222, 14223, 14224, 16222, 16223, 16224, 18222, 18223, 18224, 50061, 50062):
    with socket.socket() as s:
        # As nats-server and the hub listen: a port left in TIME_WAIT by a run just
        # stopped is free to them.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            busy.append(port)
if busy:
    sys.exit(f"ports in use on 127.0.0.1: {busy}; stop what holds them (an earlier run?) first")
PY
# Nothing of an earlier run is left running: its pid files (a killed run's) would name
# processes that may since be others'.
rm -f "$root"/*.pid

# The children run in sessions of their own, so Ctrl-C reaches this script alone, which stops
# the hubs first (they let their duties go), then the nodes, by the pid files (a node started
# again by hand, as printed below, included).
stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
stop() {
  trap - EXIT INT TERM
  if [ -n "${sleeper:-}" ]; then kill "$sleeper" 2>/dev/null || true; fi
  for n in 1 2; do stop_pid "$root/hub-$n.pid"; done
  for i in 1 3 2; do stop_pid "$root/n$i.pid"; done
  rm -f "$root"/*.pid
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

for i in 1 2 3; do
  mkdir -p "$root/n$i"
  cat > "$root/nats-$i.conf" <<EOF
server_name: "n$i"
listen: "127.0.0.1:$((14221 + i))"
http: "127.0.0.1:$((18221 + i))"
cluster {
  name: "hub-local"
  listen: "127.0.0.1:$((16221 + i))"
  routes: ["nats-route://127.0.0.1:16222", "nats-route://127.0.0.1:16223", "nats-route://127.0.0.1:16224"]
}
jetstream {
  store_dir: "$root/n$i"
  sync_interval: always
}
EOF
  setsid deploy/.tools/bin/nats-server -c "$root/nats-$i.conf" >> "$root/nats-$i.log" 2>&1 &
  echo $! > "$root/n$i.pid"
done

# Ready when every node's /healthz answers ok (JetStream up, the meta leader known).
python3 - <<'PY'
import sys, time, urllib.request
deadline = time.time() + 60
for port in (18222, 18223, 18224):
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        if time.time() > deadline:
            sys.exit(f"node on monitoring port {port} is not healthy after 60 s; see its log")
        time.sleep(0.3)
PY
echo "NATS cluster up: $urls (logs in $root/nats-*.log)"

for n in 1 2; do
  cat > "$root/hub-$n.toml" <<EOF
data_dir = "$root/hub-$n"
listen = "127.0.0.1:$((50060 + n))"
instance = "hub-$n"

[nats]
url = "$urls"
monitor_url = "$monitors"
replicas = 3
accept_no_isolation = true

[commands]
hash_key_file = "$root/command-hash.key"

[audit]
signing_key_file = "$root/audit-signing.key"

[identity]
mode = "development"
EOF
  # The first start may find the cluster still placing its first streams: tried again.
  for attempt in 1 2 3 4 5; do
    echo "== start $(date -u +%FT%TZ), attempt $attempt" >> "$root/hub-$n.log"
    # Ready is looked for in what this attempt writes, not in an earlier run's lines.
    from=$(($(stat -c %s "$root/hub-$n.log") + 1))
    NO_COLOR=1 setsid "$hub" --config "$root/hub-$n.toml" >> "$root/hub-$n.log" 2>&1 &
    pid=$!
    echo "$pid" > "$root/hub-$n.pid"
    ready=no
    for _ in $(seq 1 150); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      # Not `tail | grep -q`: under pipefail, tail killed by grep's early exit fails the test.
      if grep -q "hub serving gRPC and HTTP" < <(tail -c "+$from" "$root/hub-$n.log"); then ready=yes; break; fi
      sleep 0.2
    done
    if [ "$ready" = yes ]; then break; fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$attempt" = 5 ]; then
      tail -20 "$root/hub-$n.log"
      echo "hub-$n did not start; its log is $root/hub-$n.log" >&2
      exit 1
    fi
    sleep 2
  done
  echo "hub-$n serving on 127.0.0.1:$((50060 + n)) (log $root/hub-$n.log)"
done
echo "Running. Ctrl-C stops the hubs and the nodes. To see a fault:"
echo "  kill -9 \$(cat $root/n2.pid)     # a node: the log keeps its quorum"
echo "  (setsid deploy/.tools/bin/nats-server -c $root/nats-2.conf >> $root/nats-2.log 2>&1 & echo \$! > $root/n2.pid)   # back; it catches up"
echo "  kill -9 \$(cat $root/hub-1.pid)  # a hub: hub-2 serves on and takes its duties"
# Until Ctrl-C, whatever is killed meanwhile.
while true; do
  sleep 3600 &
  sleeper=$!
  wait "$sleeper" || true
done
