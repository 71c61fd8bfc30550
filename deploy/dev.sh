#!/usr/bin/env bash
# Runs the whole hub on embedded defaults: its own nats-server child (JetStream under
# hub-data/nats, loopback only, fsync on every write), read models in sled under
# hub-data/read-models, the demo reference data, gRPC on 127.0.0.1:50051, in development
# mode (the x-hub-department header names the calling department, unproven). Ctrl-C stops it.
# Extra arguments go to the hub (`bash deploy/dev.sh --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup.sh nats-server buf make
exec cargo run --locked -p hub -- --dev "$@"
