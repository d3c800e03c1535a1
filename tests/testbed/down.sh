#!/usr/bin/env bash
# Stops what up.sh started, newest first, by the pids it recorded; nothing
# else is touched. Idempotent. `--purge` also deletes the state directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/lib.sh
source "$here/lib.sh"

# The real node first: its pods are deleted through the API server.
"$here/node-down.sh"
for name in registry-auth registry redis mariadb kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop "$name"
done
if [[ ${1:-} == --purge ]]; then
  rm -rf "$TESTBED_DIR"
  log "removed $TESTBED_DIR"
fi
