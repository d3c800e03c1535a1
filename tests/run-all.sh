#!/usr/bin/env bash
# The one test command: installs what is missing, builds and starts the test
# bed (a real control plane with kwok, MariaDB, Redis, registries), runs every
# tier, and tears down what it started.
#
#   tests/run-all.sh                      # everything, on a fresh Debian 12 machine
#   DEVENV_TEST_EXTERNAL=1 KUBECONFIG=... tests/run-all.sh
#                                         # the cluster tiers against another cluster
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=tests/testbed/lib.sh
source tests/testbed/lib.sh
started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$*" "$((SECONDS - started))" >&2; }

step "checking prerequisites"
packages=(mariadb-server mariadb-client redis-server redis-tools docker-registry apache2-utils openssl curl
  jq tmux expect bash-completion zsh fish hyperfine zip unzip shellcheck git php-cli php-mysql
  containerd runc containernetworking-plugins iptables ipset conntrack e2fsprogs skopeo umoci mmdebstrap busybox-static uidmap)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in cargo go; do
  command -v "$tool" >/dev/null || die "$tool is required (Rust via rustup, Go 1.26 from go.dev)"
done
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --features cluster-tests -- -D warnings

step "unit tests and tests without a cluster"
cargo test --all-targets

if [[ -n ${DEVENV_TEST_EXTERNAL:-} ]]; then
  step "using the cluster in KUBECONFIG=${KUBECONFIG:?set KUBECONFIG to the cluster to test}"
else
  step "starting the test bed (the first run builds the control plane: several minutes)"
  if [[ -f $TESTBED_DIR/pids/kube-apiserver.pid ]] && kill -0 "$(cat "$TESTBED_DIR/pids/kube-apiserver.pid")" 2>/dev/null; then
    log "a test bed is already running in $TESTBED_DIR; using it and leaving it running"
  else
    trap 'step "stopping the test bed"; tests/testbed/down.sh --purge' EXIT
  fi
  tests/testbed/up.sh
  # shellcheck disable=SC1091
  source "$TESTBED_DIR/env"
fi

step "cluster tests"
# kubectl finds the plugin (and its completion shim) on PATH, as after an install.
export PATH=$root/target/debug:$root/completions:$PATH
cargo test --features cluster-tests --no-fail-fast

step "all tests passed in $((SECONDS - started))s"
