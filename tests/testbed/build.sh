#!/usr/bin/env bash
# Builds the test bed's control plane from Go modules, cached by version.
#
# Each wrapper module under tests/testbed/go/ pins one upstream release in its
# go.mod; the binaries land in $TESTBED_CACHE/bin/<name>-<version>/ and are
# reused on every later run. Prints the directory of each component as
# `NAME=dir` lines, which env.sh sources.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/lib.sh
source "$here/lib.sh"

export CGO_ENABLED=0 GOFLAGS=-mod=mod

# version_of MODULE_DIR MODULE_PATH: the version that the wrapper's go.mod pins.
version_of() {
  sed -n "s|^[[:space:]]*\(require \)\{0,1\}$2 \(v[^ ]*\).*|\2|p" "$here/go/$1/go.mod" | head -n 1
}

# build NAME MODULE_DIR VERSION LDFLAGS PACKAGE...: go build into a versioned
# cache directory, unless it is already there.
build() {
  local name=$1 dir=$2 version=$3 ldflags=$4
  shift 4
  local out="$TESTBED_CACHE/bin/$name-$version"
  if [[ -f "$out/.complete" ]]; then
    log "$name $version: cached in $out"
  else
    log "$name $version: building (cold builds take minutes)"
    local started=$SECONDS
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    (cd "$here/go/$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" "$@")
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    log "$name $version: built in $((SECONDS - started))s"
  fi
  echo "${name^^}_BIN=$out"
}

k8s_version=$(version_of kubernetes k8s.io/kubernetes)
etcd_version=$(version_of etcd go.etcd.io/etcd/server/v3)
kwok_version=$(version_of kwok sigs.k8s.io/kwok)
krew_version=$(version_of krew sigs.k8s.io/krew)
crane_version=$(version_of crane github.com/google/go-containerregistry)
actionlint_version=$(version_of actionlint github.com/rhysd/actionlint)
coredns_version=$(version_of coredns github.com/coredns/coredns)
kube_router_version=$(version_of kube-router github.com/cloudnativelabs/kube-router/v2)
local_path_version=$(version_of local-path-provisioner github.com/rancher/local-path-provisioner)
compose_ref_version=$(version_of compose-ref github.com/compose-spec/compose-go/v2)

k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

build etcd etcd "$etcd_version" "-s -w" .
build kwok kwok "$kwok_version" "-s -w" sigs.k8s.io/kwok/cmd/kwok
build k8s kubernetes "$k8s_version" "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
# The real node's components, from the same module (a warm build cache makes this quick).
build k8s_node kubernetes "$k8s_version" "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
# The real node's DNS, NetworkPolicy enforcer and volume provisioner.
build coredns coredns "$coredns_version" "-s -w" .
build kube_router kube-router "$kube_router_version" \
  "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$kube_router_version" \
  github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
build local_path_provisioner local-path-provisioner "$local_path_version" "-s -w -X main.VERSION=$local_path_version" \
  github.com/rancher/local-path-provisioner
# Tools for the distribution, image-check and workflow tests.
build krew krew "$krew_version" "-s -w" sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest
build crane crane "$crane_version" "-s -w" github.com/google/go-containerregistry/cmd/crane
build actionlint actionlint "$actionlint_version" "-s -w" github.com/rhysd/actionlint/cmd/actionlint
# The reference Compose reader (compose-go) that tests/compose_oracle.rs compares with.
build compose_ref compose-ref "$compose_ref_version" "-s -w" .
# kwok's stage definitions ship inside its module; the controller needs them.
echo "KWOK_STAGES=$(cd "$here/go/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage/fast"
