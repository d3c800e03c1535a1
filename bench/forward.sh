#!/usr/bin/env bash
# Benchmark: `kubectl devenv forward` (over SPDY, its default, and over
# WebSocket) vs `kubectl port-forward` vs a direct connection, in one run
# against the test bed. By default the Redis pod runs on the test bed's real
# node (a real kubelet and containerd; "direct" is the pod IP on the node's
# bridge). BENCH_NODE=kwok runs it on kwok instead, which forwards the pod's
# 6379 to the Redis server on this machine ("direct" is that server).
#
# Measures, each as the median of $RUNS runs:
#   - bulk throughput: SET and GET of a $BULK_MB MiB value;
#   - request latency: redis-benchmark p50/p99 for GET and SET;
#   - connection latency: a new connection, PING, close (p50/p99), as a
#     client that connects per request sees it: back to back, and 20 ms
#     apart (an application's requests);
#   - resident memory idle and with 100 open connections;
#   - time from the replacement pod becoming Ready (as kubectl's watch sees
#     it) to the first successful new connection that reaches it.
# Prints a markdown table. Not a test: nothing here passes or fails.
#
# Usage: bench/forward.sh            (tests/testbed/up.sh must have run)
#   RUNS=5 BULK_MB=64 REPLACEMENTS=5 DEVENV_BIN=target/release/kubectl-devenv
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
testbed=${TESTBED_DIR:-/tmp/kubectl-devenv-testbed}
[[ -f $testbed/env ]] || { echo "error: no test bed at $testbed; run tests/testbed/up.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$testbed/env"

RUNS=${RUNS:-5}
BULK_MB=${BULK_MB:-64}
REPLACEMENTS=${REPLACEMENTS:-5}
BENCH_REQUESTS=${BENCH_REQUESTS:-20000}
BENCH_CLIENTS=${BENCH_CLIENTS:-20}
kubectl=$TESTBED_KUBECTL
devenv=${DEVENV_BIN:-$root/target/release/kubectl-devenv}
if [[ -z ${DEVENV_BIN:-} ]]; then
  echo "building the release binary..." >&2
  (cd "$root" && cargo build --release --quiet)
fi
BENCH_NODE=${BENCH_NODE:-real}
case $BENCH_NODE in
  real)
    [[ -n ${TESTBED_REAL_NODE:-} ]] || { echo "error: the test bed has no real node (TESTBED_REAL_NODE)" >&2; exit 1; }
    pod_spec="{nodeSelector: {kubernetes.io/hostname: $TESTBED_REAL_NODE},
      tolerations: [{key: $TESTBED_REAL_NODE_TAINT, operator: Exists, effect: NoSchedule}],
      securityContext: {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, seccompProfile: {type: RuntimeDefault}},
      containers: [{name: redis, image: \"$TESTBED_IMAGE_REDIS\", ports: [{name: redis, containerPort: 6379}],
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}},
        readinessProbe: {tcpSocket: {port: 6379}, periodSeconds: 1}}]}"
    path_desc="kube-apiserver -> kubelet -> containerd -> redis-server in a pod on $TESTBED_REAL_NODE" ;;
  kwok)
    pod_spec='{containers: [{name: redis, image: "redis:7", ports: [{name: redis, containerPort: 6379}]}]}'
    path_desc="kube-apiserver -> kwok -> redis-server on this machine" ;;
  *) echo "error: BENCH_NODE must be real or kwok" >&2; exit 1 ;;
esac

ns=bench-forward-$$
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

selector=app.kubernetes.io/instance=bench,app.kubernetes.io/component=redis
"$kubectl" create namespace "$ns" >/dev/null
"$kubectl" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: bench-redis
  namespace: $ns
  labels: {app.kubernetes.io/managed-by: kubectl-devenv, app.kubernetes.io/instance: bench, app.kubernetes.io/component: redis}
spec:
  selector: {app.kubernetes.io/instance: bench, app.kubernetes.io/component: redis}
  ports: [{name: redis, port: 6379, targetPort: redis}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bench-redis
  namespace: $ns
  labels: {app.kubernetes.io/managed-by: kubectl-devenv, app.kubernetes.io/instance: bench, app.kubernetes.io/component: redis}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/instance: bench, app.kubernetes.io/component: redis}}
  template:
    metadata: {labels: {app.kubernetes.io/instance: bench, app.kubernetes.io/component: redis}}
    spec: $pod_spec
EOF
"$kubectl" wait --for=condition=Ready pod -l "$selector" -n "$ns" --timeout=120s >/dev/null
if [[ $BENCH_NODE == real ]]; then
  direct_host=$("$kubectl" get pods -n "$ns" -l "$selector" -o jsonpath='{.items[0].status.podIP}')
  direct_port=6379
else
  direct_host=127.0.0.1 direct_port=${TESTBED_REDIS_ADDR##*:}
fi

# All forwards on ports the system picks: kubectl-devenv over SPDY (its
# default) and over WebSocket, and kubectl port-forward.
"$devenv" forward -v -n "$ns" redis -p redis=0 >"$work/devenv.out" 2>"$work/devenv.err" &
devenv_pid=$!
pids+=("$devenv_pid")
"$devenv" forward --protocol websocket -n "$ns" redis -p redis=0 >"$work/devenv_ws.out" 2>"$work/devenv_ws.err" &
devenv_ws_pid=$!
pids+=("$devenv_ws_pid")
"$kubectl" port-forward -n "$ns" svc/bench-redis :6379 >"$work/kubectl.out" 2>"$work/kubectl.err" &
kubectl_pid=$!
pids+=("$kubectl_pid")
for _ in $(seq 300); do
  grep -q '^redis ' "$work/devenv.out" 2>/dev/null && grep -q '^redis ' "$work/devenv_ws.out" 2>/dev/null &&
    grep -q 'Forwarding from 127.0.0.1' "$work/kubectl.out" 2>/dev/null && break
  sleep 0.1
done
devenv_port=$(awk '/^redis /{n=split($2, a, ":"); print a[n]}' "$work/devenv.out")
devenv_ws_port=$(awk '/^redis /{n=split($2, a, ":"); print a[n]}' "$work/devenv_ws.out")
kubectl_port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$work/kubectl.out" | head -1)
[[ -n $devenv_port && -n $devenv_ws_port && -n $kubectl_port ]] || {
  echo "error: a forward did not start" >&2
  cat "$work"/*.out "$work"/*.err >&2
  exit 1
}
echo "devenv forward on $devenv_port (pid $devenv_pid), over WebSocket on $devenv_ws_port (pid $devenv_ws_pid), kubectl port-forward on $kubectl_port (pid $kubectl_pid), direct $direct_host:$direct_port" >&2

cat >"$work/probe.py" <<'PY'
"""Measurements over plain sockets, so that the client costs the same on every path."""
import os, socket, statistics, subprocess, sys, threading, time

def connect(addr, timeout=60):
    """addr: a local port, or host:port."""
    host, _, port = str(addr).rpartition(":")
    s = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_exact(s, n):
    buf = bytearray(n); view = memoryview(buf); got = 0
    while got < n:
        r = s.recv_into(view[got:], min(n - got, 1 << 20))
        if r == 0:
            raise EOFError("connection closed")
        got += r
    return buf

def read_line(s):
    out = bytearray()
    while not out.endswith(b"\r\n"):
        b = s.recv(1)
        if not b:
            raise EOFError("connection closed")
        out += b
    return bytes(out[:-2])

def command(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)

def bulk(port, mb, runs):
    """Median MiB/s for SET (upload) and GET (download) of an mb MiB value."""
    payload = os.urandom(mb << 20)
    key = b"bench-bulk-%d" % os.getpid()
    up, down = [], []
    s = connect(port)
    for _ in range(runs):
        t = time.monotonic()
        s.sendall(command(b"SET", key, payload))
        assert read_line(s) == b"+OK"
        up.append(mb / (time.monotonic() - t))
        t = time.monotonic()
        s.sendall(command(b"GET", key))
        assert read_line(s) == b"$%d" % len(payload)
        data = read_exact(s, len(payload) + 2)
        down.append(mb / (time.monotonic() - t))
        assert data[:-2] == payload, "payload changed in transit"
    s.sendall(command(b"DEL", key)); read_line(s); s.close()
    return statistics.median(up), statistics.median(down)

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def rss(port, pid, connections):
    """RSS idle, then with `connections` open (each has answered a PING)."""
    idle = rss_kib(pid)
    socks = [connect(port) for _ in range(connections)]
    for s in socks:
        s.sendall(b"PING\r\n")
    for s in socks:
        assert read_line(s) == b"+PONG"
    time.sleep(0.5)
    busy = rss_kib(pid)
    for s in socks:
        s.close()
    return idle, busy

class PodWatch:
    """kubectl's watch of the pods, each line time-stamped on arrival."""
    def __init__(self, kubectl, ns, selector):
        fmt = ('jsonpath={.type} {.object.metadata.name} {.object.metadata.deletionTimestamp} '
               '{.object.status.conditions[?(@.type=="Ready")].status}{"\\n"}')
        self.proc = subprocess.Popen([kubectl, "get", "pods", "-n", ns, "-l", selector, "-w",
                                      "--output-watch-events", "-o", fmt],
                                     stdout=subprocess.PIPE, text=True)
        self.ready = {}  # pod name -> monotonic time it was first seen Ready
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            fields = line.split()
            now = time.monotonic()
            if len(fields) == 3 and fields[0] in ("ADDED", "MODIFIED") and fields[2] == "True":
                with self.lock:
                    self.ready.setdefault(fields[1], now)

    def ready_other_than(self, old):
        with self.lock:
            return [(n, t) for n, t in self.ready.items() if n != old]

def ready_pod(kubectl, ns, selector):
    fmt = ('jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} '
           '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}')
    out = subprocess.check_output([kubectl, "get", "pods", "-n", ns, "-l", selector, "-o", fmt], text=True)
    names = [l.split()[0] for l in out.splitlines() if len(l.split()) == 2 and l.split()[1] == "True"]
    return names[0] if names else None

def connection_latency(port, count, gap):
    """p50 and p99, in ms, of connect + PING + close on new connections,
    `gap` seconds apart."""
    times = []
    for _ in range(count):
        time.sleep(gap)
        t = time.perf_counter()
        s = connect(port)
        s.sendall(b"PING\r\n")
        assert read_line(s) == b"+PONG"
        s.close()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)]

def ping_once(port):
    """(local port, ok) of one new connection's PING."""
    try:
        s = connect(port, timeout=2)
        local = s.getsockname()[1]
        s.sendall(b"PING\r\n")
        ok = read_line(s) == b"+PONG"
        s.close()
        return local, ok
    except (OSError, EOFError):
        return None, False

def pod_of(logfile, local_port, wait=1.0):
    """The pod the forward's -v log says this connection went to."""
    needle = f"127.0.0.1:{local_port} -> pod "
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with open(logfile) as f:
            for line in f:
                if needle in line and " opened" in line:
                    return line.split(needle, 1)[1].split(":", 1)[0]
        time.sleep(0.01)
    return None

def replacement_devenv(port, kubectl, ns, selector, logfile, rounds):
    """Seconds from the new pod's Ready (kubectl's watch) to the first new
    connection that reached it, per round."""
    watch = PodWatch(kubectl, ns, selector)
    time.sleep(1)
    delays = []
    for _ in range(rounds):
        old = ready_pod(kubectl, ns, selector)
        subprocess.check_call([kubectl, "delete", "pod", "-n", ns, old, "--wait=false"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        reached = None
        while reached is None and time.monotonic() < deadline:
            local, ok = ping_once(port)
            if ok:
                pod = pod_of(logfile, local)
                if pod and pod != old:
                    reached = (pod, time.monotonic())
                    break
            time.sleep(0.005)
        if reached is None:
            delays.append(float("inf")); continue
        # The watch line for the new pod may arrive a moment after our success.
        wait_until = time.monotonic() + 5
        while time.monotonic() < wait_until:
            seen = dict(watch.ready_other_than(old))
            if reached[0] in seen:
                break
            time.sleep(0.01)
        seen = dict(watch.ready_other_than(old))
        delays.append(reached[1] - seen.get(reached[0], reached[1]))
        time.sleep(1)
    watch.proc.kill()
    return delays

def replacement_kubectl(port, pid, kubectl, ns, selector):
    """What kubectl port-forward does when its pod is replaced: is it still
    running, and does a new connection work once the old pod is gone?"""
    old = ready_pod(kubectl, ns, selector)
    subprocess.check_call([kubectl, "delete", "pod", "-n", ns, old, "--wait=true", "--timeout=60s"],
                          stdout=subprocess.DEVNULL)
    t = time.monotonic()
    while time.monotonic() - t < 15:
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return f"exits {time.monotonic() - t:.1f} s after the pod is gone"
        _, ok = ping_once(port)
        if ok:
            return f"stays up; a new connection succeeded {time.monotonic() - t:.1f} s after the pod was gone"
        time.sleep(0.05)
    return "stays up, but no new connection succeeds within 15 s of the pod being gone"

if __name__ == "__main__":
    what = sys.argv[1]
    if what == "bulk":
        up, down = bulk(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        print(f"{up:.1f} {down:.1f}")
    elif what == "connect":
        b50, b99 = connection_latency(sys.argv[2], int(sys.argv[3]), 0)
        g50, g99 = connection_latency(sys.argv[2], int(sys.argv[3]), 0.02)
        print(f"{b50:.2f} {b99:.2f} {g50:.2f} {g99:.2f}")
    elif what == "rss":
        idle, busy = rss(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        print(f"{idle / 1024:.1f} {busy / 1024:.1f}")
    elif what == "replace-devenv":
        delays = replacement_devenv(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
        finite = [d for d in delays if d != float("inf")]
        rounds = ",".join(f"{d * 1000:.0f}" for d in delays)
        print(f"{statistics.median(delays) * 1000:.0f} {max(delays) * 1000:.0f} {len(finite)} {len(delays)} {rounds}")
    elif what == "replace-kubectl":
        print(replacement_kubectl(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]))
PY
probe() { python3 "$work/probe.py" "$@"; }

# median of whitespace-separated numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

# latency_once [HOST:]PORT: "get_p50 get_p99 set_p50 set_p99 get_rps" of one redis-benchmark run
latency_once() {
  local host=127.0.0.1 port=$1
  [[ $1 == *:* ]] && host=${1%:*} port=${1##*:}
  redis-benchmark -h "$host" -p "$port" -t set,get -n "$BENCH_REQUESTS" -c "$BENCH_CLIENTS" -d 256 --csv |
    awk -F'","' '/^"GET/ {get50=$5; get99=$7; rps=$2} /^"SET/ {set50=$5; set99=$7}
      END {gsub(/"/, "", rps); print get50, get99, set50, set99, rps}'
}

# medians FILE COLUMNS: the median of each column
medians() {
  local cols=() c
  for c in $(seq "$2"); do cols+=("$(awk -v c="$c" '{print $c}' "$1" | median)"); done
  echo "${cols[*]}"
}

# Runs interleave the paths, so that a busy moment on the machine
# does not fall on one path only.
direct_port=$direct_host:$direct_port
declare -A bulk lat conn rss
paths=(devenv devenv_ws kubectl direct)
for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS..." >&2
  for path in "${paths[@]}"; do
    port_var=${path}_port
    probe bulk "${!port_var}" "$BULK_MB" 1 >>"$work/bulk.$path"
    latency_once "${!port_var}" >>"$work/lat.$path"
    probe connect "${!port_var}" 100 >>"$work/conn.$path"
  done
done
for path in "${paths[@]}"; do
  bulk[$path]=$(medians "$work/bulk.$path" 2)
  lat[$path]=$(medians "$work/lat.$path" 5)
  conn[$path]=$(medians "$work/conn.$path" 4)
done
rss[devenv]=$(probe rss "$devenv_port" "$devenv_pid" 100)
rss[devenv_ws]=$(probe rss "$devenv_ws_port" "$devenv_ws_pid" 100)
rss[kubectl]=$(probe rss "$kubectl_port" "$kubectl_pid" 100)

echo "measuring pod replacement ($REPLACEMENTS rounds)..." >&2
replace_devenv=$(probe replace-devenv "$devenv_port" "$kubectl" "$ns" "$selector" "$work/devenv.err" "$REPLACEMENTS")
replace_kubectl=$(probe replace-kubectl "$kubectl_port" "$kubectl_pid" "$kubectl" "$ns" "$selector")

field() { awk -v i="$2" '{print $i}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

{
  echo
  echo "kubectl-devenv forward benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $RUNS runs each (medians)"
  echo "kubectl: $("$kubectl" version --client 2>/dev/null | head -1); path: client -> forward -> $path_desc"
  echo
  echo "| metric | devenv forward (SPDY, default) | devenv forward --protocol websocket | kubectl port-forward | direct ($direct_host) | SPDY / kubectl | WebSocket / kubectl |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for row in "SET $BULK_MB MiB, MiB/s:1" "GET $BULK_MB MiB, MiB/s:2"; do
    name=${row%:*} i=${row##*:}
    d=$(field "${bulk[devenv]}" "$i") w=$(field "${bulk[devenv_ws]}" "$i") k=$(field "${bulk[kubectl]}" "$i") l=$(field "${bulk[direct]}" "$i")
    echo "| $name | $d | $w | $k | $l | $(ratio "$d" "$k") | $(ratio "$w" "$k") |"
  done
  for row in "GET p50 latency, ms:1" "GET p99 latency, ms:2" "SET p50 latency, ms:3" "SET p99 latency, ms:4" "GET requests/s:5"; do
    name=${row%:*} i=${row##*:}
    d=$(field "${lat[devenv]}" "$i") w=$(field "${lat[devenv_ws]}" "$i") k=$(field "${lat[kubectl]}" "$i") l=$(field "${lat[direct]}" "$i")
    echo "| $name (redis-benchmark -c $BENCH_CLIENTS -n $BENCH_REQUESTS -d 256) | $d | $w | $k | $l | $(ratio "$d" "$k") | $(ratio "$w" "$k") |"
  done
  for row in "new connection + PING + close, back to back, p50 ms:1" "new connection + PING + close, back to back, p99 ms:2" \
    "new connection + PING + close, 20 ms apart, p50 ms:3" "new connection + PING + close, 20 ms apart, p99 ms:4"; do
    name=${row%:*} i=${row##*:}
    d=$(field "${conn[devenv]}" "$i") w=$(field "${conn[devenv_ws]}" "$i") k=$(field "${conn[kubectl]}" "$i") l=$(field "${conn[direct]}" "$i")
    echo "| $name (100 per run) | $d | $w | $k | $l | $(ratio "$d" "$k") | $(ratio "$w" "$k") |"
  done
  for row in "RSS idle, MiB:1" "RSS with 100 open connections, MiB:2"; do
    name=${row%:*} i=${row##*:}
    d=$(field "${rss[devenv]}" "$i") w=$(field "${rss[devenv_ws]}" "$i") k=$(field "${rss[kubectl]}" "$i")
    echo "| $name | $d | $w | $k | - | $(ratio "$d" "$k") | $(ratio "$w" "$k") |"
  done
  echo "| pod replaced: new pod Ready -> first new connection to it, ms (median / max of $REPLACEMENTS; reached $(field "$replace_devenv" 3)/$(field "$replace_devenv" 4)) | $(field "$replace_devenv" 1) / $(field "$replace_devenv" 2) | - | $replace_kubectl | - | - | - |"
  echo
  echo "Pod replacement, every round (ms): $(field "$replace_devenv" 5). Ready is when kubectl's own watch saw it."
  if [[ $BENCH_NODE == kwok ]]; then
    echo "kwok serves a port-forward for any pod name without a container behind it, so kubectl's existing tunnel"
    echo "keeps reaching Redis here; against a real kubelet its stream breaks with the pod (kubectl#686)."
  fi
}
