#!/usr/bin/env bash
# Benchmark: `kubectl devenv sync` against `kubectl cp` of the same
# 10,000-file tree, in one run, into the same dev pod on the test bed's real
# node (a kubelet with containerd; the code volume is an emptyDir).
#
# Measures:
#   - initial upload into an empty code directory: `sync --once` vs
#     `kubectl cp DIR pod:/var/www/html/cp` (median of $RUNS, hyperfine);
#   - a rerun with nothing changed: `sync --once` again;
#   - one saved file, from the local write until a loop in the pod sees it,
#     while `sync` watches (p50/p99 of $SAVES saves, debounce included);
#   - a 1,000-file burst (a `git checkout`), until the pod has all of them.
# Prints a markdown table. Not a test: nothing here passes or fails.
#
# Usage: bench/sync.sh      (the test bed must be up, with its real node)
#   RUNS=5 SAVES=50 FILES=10000 DEVENV_BIN=target/release/kubectl-devenv
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
testbed=${TESTBED_DIR:-/tmp/kubectl-devenv-testbed}
[[ -f $testbed/env ]] || { echo "error: no test bed at $testbed; run tests/testbed/up.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$testbed/env"
: "${TESTBED_IMAGE_PHP_FPM:?the test bed has no php-fpm image (real node not set up)}"

RUNS=${RUNS:-5}
SAVES=${SAVES:-50}
FILES=${FILES:-10000}
kubectl=$TESTBED_KUBECTL
devenv=${DEVENV_BIN:-$root/target/release/kubectl-devenv}
if [[ -z ${DEVENV_BIN:-} ]]; then
  echo "building the release binary..." >&2
  (cd "$root" && cargo build --release --quiet)
fi
for tool in hyperfine jq python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done

stack=bench-sync-$$
ns=$stack-dev
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  (cd "$work" && "$devenv" down --purge --yes --stack "$stack" >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/code"
cat >"$work/devenv.yaml" <<EOF
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata: {name: $stack}
spec:
  namespaces: {dev: $ns, test: $stack-test}
  targetArch: amd64
  placement:
    nodeSelector: {devenv.test/real-node: "true"}
    tolerations: [{key: devenv.test/real-node, operator: Exists, effect: NoSchedule}]
  dev:
    image: $TESTBED_IMAGE_PHP_FPM
    sync: {localPath: code}
  components: [{kind: php, image: $TESTBED_IMAGE_PHP_FPM}]
EOF
echo "bringing up stack $stack on $TESTBED_REAL_NODE..." >&2
(cd "$work" && "$devenv" up --yes --skip-arch-check >/dev/null 2>"$work/up.err") || { cat "$work/up.err" >&2; exit 1; }
pod=$("$kubectl" get pods -n "$ns" -l app.kubernetes.io/component=dev -o jsonpath='{.items[0].metadata.name}')

# The tree tests/sync_cluster.rs generates: PHP-ish files of 200 B to 8 KiB
# in 40 x 45 directories.
python3 - "$work/code" "$FILES" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
seed = 0x5eed
def nxt():
    global seed
    seed ^= (seed << 13) & 0xFFFFFFFFFFFFFFFF
    seed ^= seed >> 7
    seed ^= (seed << 17) & 0xFFFFFFFFFFFFFFFF
    return seed
for i in range(count):
    d = os.path.join(root, f"src/m{i % 40}/d{(i // 40) % 45}")
    os.makedirs(d, exist_ok=True)
    size = 200 + nxt() % 8000
    content = f"<?php\n// file {i}\nnamespace App\\M{i % 40};\n".encode()
    while len(content) < size:
        content += f"function f{nxt() % 1000}() {{ return {nxt()}; }}\n".encode()
    with open(os.path.join(d, f"C{i}.php"), "wb") as f:
        f.write(content[:size])
PY
echo "tree: $(find "$work/code" -type f | wc -l) files, $(du -sh "$work/code" | cut -f1)" >&2

in_pod() { "$kubectl" exec -n "$ns" "$pod" -c dev -- sh -c "$1"; }
# Empties the code directory by moving its content aside, never deleting it:
# right after 10,000 files are deleted, ext4 refuses to reuse their inodes
# for a while and checks each candidate (recently_deleted), which made
# extracting the next 10,000 files, by either tool, take 1.5-4 s instead of
# 0.3 s here. The trash goes with the pod.
cat >"$work/empty.sh" <<'SH'
cd /var/www/html || exit 1
t=.bench-trash/$(date +%s%N)
mkdir -p "$t" || exit 1
for e in * .[!.]* ..?*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  [ "$e" = .bench-trash ] || mv "$e" "$t/" || exit 1
done
SH
empty_pod="$kubectl exec -i -n $ns $pod -c dev -- sh -s <$work/empty.sh"
sync_once="cd $work && $devenv sync --once --stack $stack >/dev/null 2>&1"
kubectl_cp="$kubectl cp $work/code $ns/$pod:/var/www/html/cp -c dev >/dev/null"

echo "== initial upload ($RUNS runs each)" >&2
hyperfine --runs "$RUNS" --warmup 1 --export-json "$work/initial.json" \
  --prepare "$empty_pod" -n "kubectl devenv sync --once" "$sync_once" \
  --prepare "$empty_pod" -n "kubectl cp" "$kubectl_cp"
# Both arrived whole: the same sha256 for every file.
eval "$empty_pod"; eval "$sync_once"; eval "$kubectl_cp"
sums=$(in_pod 'cd /var/www/html && (find src -type f -exec sha256sum {} + | sort | sha256sum; cd cp && find src -type f -exec sha256sum {} + | sort | sha256sum)')
local_sum=$(cd "$work/code" && find src -type f -exec sha256sum {} + | sort | sha256sum)
[[ $(echo "$sums" | sort -u) == "$local_sum" ]] || { echo "error: the trees differ: $sums vs $local_sum" >&2; exit 1; }
in_pod 'mkdir -p /var/www/html/.bench-trash && mv /var/www/html/cp /var/www/html/.bench-trash/cp'

echo "== rerun, nothing changed" >&2
hyperfine --runs "$((RUNS * 2))" --warmup 1 --export-json "$work/rerun.json" \
  -n "kubectl devenv sync --once (nothing changed)" "$sync_once"

echo "== save-to-visible latency and a 1,000-file burst" >&2
(cd "$work" && "$devenv" sync --stack "$stack" >/dev/null 2>"$work/sync.err") &
pids+=("$!")
for _ in $(seq 600); do grep -q "Watching for changes" "$work/sync.err" && break; sleep 0.1; done
grep -q "Watching for changes" "$work/sync.err" || { cat "$work/sync.err" >&2; exit 1; }
python3 - "$work/code" "$kubectl" "$ns" "$pod" "$SAVES" >"$work/latency.json" <<'PY'
"""A loop in the pod prints each probe as soon as it exists with the
expected content; the time from the local write to reading that line is
the latency (the exec stream back adds well under a millisecond here)."""
import json, os, statistics, subprocess, sys, time
code, kubectl, ns, pod, saves = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
watcher = r'''
cd /var/www/html
while read -r name want; do
  until [ "$(cat "$name" 2>/dev/null)" = "$want" ]; do sleep 0.005; done
  echo "$name"
done
'''
p = subprocess.Popen([kubectl, "exec", "-i", "-n", ns, pod, "-c", "dev", "--", "sh", "-c", watcher],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
def wait_for(name, want, write):
    p.stdin.write(f"{name} {want}\n"); p.stdin.flush()
    time.sleep(0.3)  # the loop is waiting before the write starts the clock
    start = time.monotonic()
    write()
    assert p.stdout.readline().strip() == name
    return time.monotonic() - start
os.makedirs(os.path.join(code, "probe"), exist_ok=True)
latencies = []
for i in range(saves):
    path = os.path.join(code, "probe", "saved.php")
    def save(i=i):
        with open(path, "w") as f:
            f.write(f"v{i}")
    latencies.append(wait_for("probe/saved.php", f"v{i}", save))
    time.sleep(0.2)
def burst():
    os.makedirs(os.path.join(code, "burst"), exist_ok=True)
    for j in range(1000):
        with open(os.path.join(code, "burst", f"B{j}.php"), "w") as f:
            f.write(f"b{j}")
burst_time = wait_for("burst/B999.php", "b999", burst)
count = subprocess.run([kubectl, "exec", "-n", ns, pod, "-c", "dev", "--", "sh", "-c",
                        "ls /var/www/html/burst | wc -l"], capture_output=True, text=True).stdout.strip()
p.stdin.close(); p.wait()
latencies.sort()
q = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))]
print(json.dumps({"p50": q(0.5), "p99": q(0.99), "burst": burst_time, "burst_files": int(count)}))
PY

median() { jq -r ".results[] | select(.command == \"$2\") | .median" "$1"; }
sync_initial=$(median "$work/initial.json" "kubectl devenv sync --once")
cp_initial=$(median "$work/initial.json" "kubectl cp")
rerun=$(median "$work/rerun.json" "kubectl devenv sync --once (nothing changed)")
read -r p50 p99 burst burst_files < <(jq -r '"\(.p50) \(.p99) \(.burst) \(.burst_files)"' "$work/latency.json")
ms() { python3 -c "print(round($1 * 1000))"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "| Measurement ($FILES files, $(du -sh "$work/code/src" | cut -f1)) | kubectl devenv sync | kubectl cp | ratio |"
echo "|---|---|---|---|"
echo "| Initial upload (median of $RUNS) | $(ms "$sync_initial") ms | $(ms "$cp_initial") ms | $(ratio "$sync_initial" "$cp_initial")× |"
echo "| Rerun, nothing changed (median of $((RUNS * 2))) | $(ms "$rerun") ms | (a full copy again) | $(ratio "$rerun" "$cp_initial")× |"
echo "| One saved file visible in the pod, p50 / p99 of $SAVES | $(ms "$p50") / $(ms "$p99") ms | - | - |"
echo "| 1,000-file burst until all are in the pod ($burst_files seen) | $(ms "$burst") ms | - | - |"
