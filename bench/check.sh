#!/usr/bin/env bash
# Benchmark: `kubectl devenv check` on 20 images against 20 sequential
# `crane manifest` runs, on the test bed's local registry. Pushes its own
# images (10 multi-arch indexes, 10 single-platform manifests) with crane.
#
# Two rounds: straight to the loopback registry, and through
# bench/latency-proxy.py, which makes the same registry answer with a round
# trip of $RTT_MS (default 30 ms, a nearby cloud registry). Registry checks
# are network-bound in real use, so the target applies to the second round.
#
#   source /tmp/kubectl-devenv-testbed/env   # TESTBED_REGISTRY, TESTBED_CRANE
#   bench/check.sh                           # builds target/release/kubectl-devenv if needed
#
# Target: check takes at most 0.25x the sequential crane time (cold cache).
# Prints a Markdown table for the README; exits 1 when the target is missed.
set -euo pipefail

cd "$(dirname "$0")/.."
registry=${TESTBED_REGISTRY:?source the test bed env first (tests/testbed/up.sh)}
crane=${TESTBED_CRANE:?source the test bed env first (tests/testbed/up.sh)}
devenv=${DEVENV_BIN:-target/release/kubectl-devenv}
runs=${RUNS:-10}
rtt_ms=${RTT_MS:-30}
proxy_port=${PROXY_PORT:-5099}
count=20

if [[ ! -x $devenv ]]; then
  echo "building $devenv ..." >&2
  cargo build --release --quiet
fi

work=$(mktemp -d)
proxy_pid=
cleanup() {
  [[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/layer"

# --- fixtures: devenv-bench-<pid>-<n>:1, odd ones multi-arch ----------------------
repos=()
for n in $(seq 1 $count); do
  echo "bench layer $n" >"$work/layer/file"
  tar -C "$work/layer" -cf "$work/layer.tar" file
  repo="devenv-bench-$$-$n"
  image="$registry/$repo:1"
  if ((n % 2)); then
    for arch in amd64 arm64; do
      "$crane" append --oci-empty-base -f "$work/layer.tar" -t "$image-$arch" >/dev/null 2>&1
      "$crane" mutate --set-platform "linux/$arch" "$image-$arch" -t "$image-$arch" >/dev/null 2>&1
    done
    "$crane" index append -m "$image-amd64" -m "$image-arm64" -t "$image" >/dev/null 2>&1
  else
    "$crane" append --oci-empty-base -f "$work/layer.tar" -t "$image" >/dev/null 2>&1
    "$crane" mutate --set-platform linux/amd64 "$image" -t "$image" >/dev/null 2>&1
  fi
  repos+=("$repo:1")
done
echo "pushed $count images to $registry" >&2

python3 bench/latency-proxy.py "$proxy_port" "$registry" "$rtt_ms" &
proxy_pid=$!
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$proxy_port/v2/" >/dev/null && break
  sleep 0.1
done

# bench ROUND_NAME REGISTRY: times both tools against REGISTRY, appends table rows.
bench() {
  local round=$1 host=$2 images=() results="$work/results-$2.json"
  for repo in "${repos[@]}"; do images+=("$host/$repo"); done
  printf '%s\n' "${images[@]}" >"$work/images"
  cat >"$work/crane-sequential.sh" <<EOF
while read -r image; do "$crane" manifest "\$image" >/dev/null; done <"$work/images"
EOF
  # No cluster: only the registry work is compared. Cold: a fresh platform
  # cache each run (manifest and config GETs, no HEAD); warm: HEADs only.
  local check="KUBECONFIG=$work/none XDG_CACHE_HOME=$work/cache $devenv check --arch amd64,arm64 --image ${images[*]} >/dev/null 2>&1 || true"

  # Every image really is checked: 20 read, 10 lacking arm64.
  KUBECONFIG=$work/none XDG_CACHE_HOME=$work/verify "$devenv" check --arch amd64,arm64 \
    --image "${images[@]}" -o json >"$work/report.json" 2>/dev/null || true
  jq -e '([.images[] | select(.error == null)] | length == 20)
         and ([.images[] | select(.missing == ["arm64"])] | length == 10)' "$work/report.json" >/dev/null ||
    { echo "check did not read all 20 images via $host" >&2; exit 1; }

  # One --prepare per command, in command order.
  hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$results" \
    --prepare true --prepare "rm -rf $work/cache" --prepare true \
    --command-name "$round: 20x crane manifest (sequential)" \
    --command-name "$round: kubectl devenv check, 20 images, cold cache" \
    --command-name "$round: kubectl devenv check, 20 images, warm cache" \
    "bash $work/crane-sequential.sh" "$check" "$check" >&2
  jq -r '(.results[0].mean) as $crane | .results[]
    | "| \(.command) | \(.mean * 1000 | floor) ms | \(.min * 1000 | floor) ms | \(.max * 1000 | floor) ms | \((.mean / $crane * 100 | floor) / 100)x |"' \
    "$results" >>"$work/table"
}

bench "loopback" "$registry"
bench "${rtt_ms} ms RTT" "127.0.0.1:$proxy_port"

echo "| Round: command | Mean | Min | Max | vs. sequential crane |"
echo "|---|---|---|---|---|"
cat "$work/table"

ratio=$(jq '.results[1].mean / .results[0].mean' "$work/results-127.0.0.1:$proxy_port.json")
echo "cold-cache ratio at ${rtt_ms} ms RTT: $ratio (target <= 0.25)" >&2
awk -v r="$ratio" 'BEGIN { exit !(r <= 0.25) }'
