# shellcheck shell=bash
# Shared settings for the test-bed scripts; sourced, not run.

TESTBED_CACHE=${TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-devenv-testbed}
# Runtime state: PKI, kubeconfigs, data directories, pid files and logs.
TESTBED_DIR=${TESTBED_DIR:-${TMPDIR:-/tmp}/kubectl-devenv-testbed}

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$what not ready after ${seconds}s (logs in $TESTBED_DIR/logs)"
    fi
    sleep 0.2
  done
}

# running NAME: whether the process recorded for NAME is still alive.
running() {
  local pidfile=$TESTBED_DIR/pids/$1.pid
  [[ -f $pidfile ]] && alive "$(cat "$pidfile")"
}

# alive PID: whether PID runs (an exited process that its parent has not
# reaped yet, as the VM's init takes a while to, counts as gone).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

# stop NAME: stop the process recorded for NAME (TERM, then KILL after 10s).
stop() {
  local pidfile=$TESTBED_DIR/pids/$1.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if alive "$pid"; then
    log "$1: stopping (pid $pid)"
    kill "$pid"
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; fi
  fi
  rm -f "$pidfile"
}
