#!/usr/bin/env bash
# How long one TAB takes: the `__complete` hook that kubectl's plugin completion runs,
# for answers from the CLI alone, from the kubeconfig, and from the cluster, then the
# whole `kubectl __complete devenv ...` round trip (plugin discovery + shim + hook),
# against kubectl's own completion of a cluster lookup (`kubectl get namespace <TAB>`).
# Prints medians; the stack it completes components of is brought up and taken down here.
#
# Usage: source /tmp/kubectl-devenv-testbed/env && bench/completion.sh [RUNS]
# Needs: hyperfine, jq, a release build (cargo build --release), KUBECONFIG.
set -euo pipefail

runs=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
devenv=${DEVENV_BIN:-$root/target/release/kubectl-devenv}
kubectl=${TESTBED_KUBECTL:-$(command -v kubectl)}

for tool in hyperfine jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done
[ -x "$devenv" ] || { echo "error: $devenv not built; run cargo build --release" >&2; exit 1; }
[ -n "${KUBECONFIG:-}" ] || { echo "error: KUBECONFIG is not set (source the test bed's env)" >&2; exit 1; }

work=$(mktemp -d)
stack=bench-completion-$$
cleanup() {
  "$devenv" down --stack "$stack" --purge --yes >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# kubectl finds the plugin and the shim on PATH, as after a krew install.
mkdir -p "$work/bin"
ln -s "$devenv" "$work/bin/kubectl-devenv"
cp "$root/completions/kubectl_complete-devenv" "$work/bin/"
ln -s "$kubectl" "$work/bin/kubectl"
export PATH="$work/bin:$PATH"

cat >"$work/devenv.yaml" <<EOF
apiVersion: kubectl-devenv.io/v1alpha1
kind: DevEnv
metadata:
  name: $stack
spec:
  namespaces:
    dev: $stack-dev
    test: $stack-test
  components:
    - kind: mysql
    - kind: redis
EOF
"$devenv" up -f "$work/devenv.yaml" --yes >/dev/null

# Run from a directory without devenv.yaml, so components come from the cluster.
cd "$work/bin"
hyperfine --shell=none --warmup 3 --runs "$runs" --export-json "$work/results.json" --style basic \
  -n 'hook: subcommands' "kubectl-devenv __complete ''" \
  -n 'hook: contexts (kubeconfig)' "kubectl-devenv __complete --context ''" \
  -n 'hook: components (cluster)' "kubectl-devenv __complete forward --stack $stack ''" \
  -n 'kubectl TAB: devenv forward' "kubectl __complete devenv forward --stack $stack ''" \
  -n 'kubectl TAB: get namespace' "kubectl __complete get namespace ''" >&2

echo
echo "| completion | median | min | max |"
echo "|---|---|---|---|"
jq -r '.results[] | "| \(.command) | \(.median * 1000 | floor) ms | \(.min * 1000 | floor) ms | \(.max * 1000 | floor) ms |"' \
  "$work/results.json"
