#!/usr/bin/env bash
# Runs every check and test: installs the pinned tools if needed, lints proto/ with buf,
# then runs the workspace's tests (unit tests, the end-to-end tests against real
# nats-server processes, and the DCAT-AP SHACL check of the catalogue export with pyshacl, and
# the web console opened in headless Chromium).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup.sh nats-server buf pyshacl chromium make
echo "== buf lint proto/"
deploy/.tools/bin/buf lint proto
echo "== cargo test"
exec cargo test --locked --workspace "$@"
