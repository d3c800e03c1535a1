#!/usr/bin/env bash
# Stops what up.sh started, newest first, by the pids it recorded; nothing
# else is touched. Idempotent. `--purge` also deletes the state directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/lib.sh
source "$here/lib.sh"

for name in registry-auth registry redis mariadb kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pidfile=$TESTBED_DIR/pids/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: stopping (pid $pid)"
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
done
if [[ ${1:-} == --purge ]]; then
  rm -rf "$TESTBED_DIR"
  log "removed $TESTBED_DIR"
fi
