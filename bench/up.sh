#!/usr/bin/env bash
# Benchmarks on one control plane (the test bed by default):
#   1. `kubectl devenv up` of php+mysql+redis until every component is Ready.
#      On the test bed's real node (BENCH_NODE=real, the default when it has
#      one) against `kubectl apply` of the very objects `up` renders
#      (`up --dry-run -o yaml`) and `kubectl wait`/`rollout status`: real
#      containers start and real probes pass, so the difference is what `up`
#      adds beyond the pods' own start. On kwok (BENCH_NODE=kwok) against the
#      research note's flow: `kubectl apply -f` of its two YAML files
#      (bench/fixtures/, copied verbatim) and `kubectl wait`.
#   2. `kubectl devenv status` against the equivalent `kubectl get`.
# Prints medians and ratios. Each `up` run starts from nothing: hyperfine's
# --prepare step tears the previous run down and waits until it is gone.
#
# Usage: source /tmp/kubectl-devenv-testbed/env && bench/up.sh [RUNS]
# Needs: hyperfine, jq, a release build (cargo build --release), KUBECONFIG.
set -euo pipefail

runs=${1:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
devenv=${DEVENV_BIN:-$root/target/release/kubectl-devenv}
kubectl=${TESTBED_KUBECTL:-kubectl}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

for tool in hyperfine jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done
[ -x "$devenv" ] || { echo "error: $devenv not built; run cargo build --release" >&2; exit 1; }
[ -n "${KUBECONFIG:-}" ] || { echo "error: KUBECONFIG is not set (source the test bed's env)" >&2; exit 1; }

# The research flow's namespaces are fixed (dev, test) and its teardown deletes
# them, so they must not exist before the benchmark. The devenv stack uses its own.
for ns in dev test; do
  if "$kubectl" get namespace "$ns" >/dev/null 2>&1; then
    echo "error: namespace $ns already exists; the research flow would delete it, so refusing to run" >&2
    exit 1
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench_node=${BENCH_NODE:-$([[ -n ${TESTBED_REAL_NODE:-} ]] && echo real || echo kwok)}
if [[ $bench_node == real ]]; then
  : "${TESTBED_REAL_NODE:?BENCH_NODE=real needs the real node of the test bed}"
  cat >"$work/devenv.yaml" <<EOF
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata:
  name: bench
spec:
  namespaces: {dev: bench-dev, test: bench-test}
  targetArch: amd64
  placement:
    nodeSelector: {kubernetes.io/hostname: $TESTBED_REAL_NODE}
    tolerations: [{key: $TESTBED_REAL_NODE_TAINT, operator: Exists, effect: NoSchedule}]
  dev: {image: "$TESTBED_IMAGE_PHP_FPM"}
  components:
    - {kind: php, image: "$TESTBED_IMAGE_PHP_FPM"}
    - {kind: mysql, image: "$TESTBED_IMAGE_MARIADB"}
    - {kind: redis, image: "$TESTBED_IMAGE_REDIS"}
EOF
else
  cat >"$work/devenv.yaml" <<'EOF'
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata:
  name: bench
spec:
  namespaces: {dev: bench-dev, test: bench-test}
  components:
    - kind: php
    - kind: mysql
    - kind: redis
EOF
fi

research_down="$kubectl delete namespace dev test --ignore-not-found --wait=true >/dev/null"
# test-stack.yaml has no Namespace object: the note's flow needs `test` to exist.
# test-stack.yaml has no Namespace object: the note's flow needs `test` created first.
research_up="$kubectl create namespace test >/dev/null \
  && $kubectl apply -f $here/fixtures/dev-environment.yaml -f $here/fixtures/test-stack.yaml >/dev/null \
  && $kubectl wait -n dev deployment/php-dev --for=condition=Available --timeout=120s >/dev/null \
  && $kubectl wait -n test deployment/test-stack --for=condition=Available --timeout=120s >/dev/null"
devenv_down="$devenv down -f $work/devenv.yaml --purge --yes >/dev/null"
devenv_up="$devenv up -f $work/devenv.yaml --yes >/dev/null 2>&1"

echo "== up until Ready on $bench_node ($runs runs each; results in $out)"
if [[ $bench_node == real ]]; then
  # The same objects, applied and awaited the way a kubectl user would.
  "$devenv" up -f "$work/devenv.yaml" --dry-run -o yaml --yes >"$work/objects.yaml"
  same_up="$kubectl apply --server-side --field-manager=bench -f $work/objects.yaml >/dev/null \
    && $kubectl -n bench-dev rollout status deployment/dev --timeout=180s >/dev/null \
    && $kubectl -n bench-test rollout status deployment/php --timeout=180s >/dev/null \
    && $kubectl -n bench-test rollout status statefulset/mysql --timeout=180s >/dev/null \
    && $kubectl -n bench-test rollout status statefulset/redis --timeout=180s >/dev/null"
  same_down="$kubectl delete namespace bench-dev bench-test --ignore-not-found --wait=true >/dev/null"
  # Pull the images once, so that no run pays for a first pull.
  eval "$devenv_up" && eval "$devenv_down"
  hyperfine --runs "$runs" --export-json "$out/up.json" \
    --prepare "$devenv_down; $same_down" -n "kubectl devenv up" "$devenv_up" \
    --prepare "$devenv_down; $same_down" -n "kubectl apply + rollout status (same objects)" "$same_up"
else
  hyperfine --runs "$runs" --export-json "$out/up.json" \
    --prepare "$devenv_down" -n "kubectl devenv up" "$devenv_up" \
    --prepare "$research_down" -n "kubectl apply + kubectl wait (research note)" "$research_up"
fi

echo "== status of a running stack"
eval "$devenv_up"
hyperfine --runs "$((runs * 3))" --warmup 2 --export-json "$out/status.json" \
  -n "kubectl devenv status" "$devenv status --stack bench >/dev/null" \
  -n "kubectl get pods -A (research note)" "$kubectl get pods -A >/dev/null" \
  -n "kubectl get deploy,sts,pods -o wide (same facts)" \
  "$kubectl get deployments,statefulsets,pods -n bench-dev -o wide >/dev/null && $kubectl get deployments,statefulsets,pods -n bench-test -o wide >/dev/null"

eval "$devenv_down"
eval "$research_down"

report() {
  jq -r '.results as $r | $r[0].median as $base
    | $r[] | "\(.command)\tmedian \(.median * 1000 | round) ms\tratio \((.median / $base * 100 | round) / 100)"' "$1"
}
echo
echo "Medians (ratio relative to kubectl devenv):"
report "$out/up.json" | column -t -s $'\t'
report "$out/status.json" | column -t -s $'\t'
