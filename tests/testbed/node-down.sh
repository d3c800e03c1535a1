#!/usr/bin/env bash
# Stops the real node that node.sh set up and undoes its changes to the host:
# its pods (through the API server, while the kubelet can still tear down
# their volumes and networks), the node's processes, leftover containers,
# mounts, iptables rules and ipsets, the bridge and routes, sysctls, and the
# host paths the kubelet and containerd created. Idempotent; down.sh calls it
# before stopping the control plane.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/lib.sh
source "$here/lib.sh"

node_dir=$TESTBED_DIR/node
[[ -d $node_dir ]] || exit 0
containerd_state=/run/kubectl-devenv-testbed/containerd
if [[ -f $node_dir/bin.env ]]; then
  # shellcheck disable=SC1091
  source "$node_dir/bin.env"
fi

if running kube-apiserver && [[ -n ${K8S_BIN:-} ]] && curl -fsS http://127.0.0.1:10348/healthz >/dev/null 2>&1; then
  log "real-0: deleting its pods"
  "$K8S_BIN/kubectl" --kubeconfig="$TESTBED_DIR/kubeconfig" delete pods --all-namespaces \
    --field-selector=spec.nodeName=real-0 --grace-period=1 --timeout=30s >/dev/null ||
    log "real-0: pods not deleted in time; removing their containers below"
fi
for name in local-path-provisioner kube-router coredns kube-proxy kubelet; do
  stop "$name"
done

# Containers the kubelet left behind (a kill -9, a timeout above).
if running containerd; then
  ctr=(ctr --address "$containerd_state/containerd.sock" --namespace k8s.io)
  for id in $("${ctr[@]}" containers list --quiet); do
    "${ctr[@]}" tasks delete --force "$id" >/dev/null 2>&1 || true
    "${ctr[@]}" containers delete "$id" >/dev/null 2>&1 || true
  done
fi
stop containerd

# Deepest first: volume and pod netns mounts, containers' rootfs and shm.
mounts=$(findmnt -rn -o TARGET |
  grep -E "^($node_dir/kubelet|/var/lib/kubelet|/run/netns/cni-|$containerd_state|$TESTBED_DIR/containerd)" | sort -r) || true
for target in $mounts; do
  umount "$target" 2>/dev/null || umount -l "$target"
done
rm -f /run/netns/cni-* "$node_dir/kubelet.img"

# kube-proxy's own cleanup, then every chain and rule of the node's parts
# (kube-proxy, kubelet, kube-router, CNI portmap, node.sh's TESTBED chains).
if [[ -x ${K8S_NODE_BIN:-}/kube-proxy ]]; then
  "$K8S_NODE_BIN/kube-proxy" --cleanup >"$TESTBED_DIR/logs/kube-proxy-cleanup.log" 2>&1 || true
fi
ours='KUBE-|CNI-|TESTBED-|kube-router'
for cmd in iptables ip6tables; do
  for table in raw mangle nat filter; do
    rules=$("$cmd-save" -t "$table" 2>/dev/null) || continue
    grep -qE "$ours" <<<"$rules" || continue
    grep -vE "$ours" <<<"$rules" | "$cmd-restore" -T "$table"
  done
done
for set in $(ipset list -n 2>/dev/null | grep -E "^(inet6:)?($ours)"); do ipset destroy "$set"; done
conntrack -D -s 10.85.0.0/24 >/dev/null 2>&1 || true
conntrack -D -d 10.85.0.0/24 >/dev/null 2>&1 || true

if ip link show realbr0 >/dev/null 2>&1; then
  log "network: removing bridge realbr0 and its routes"
  for port in $(ip -o link show master realbr0 | sed -n 's/^[0-9]*: \([^@:]*\).*/\1/p'); do
    ip link del "$port" 2>/dev/null || true
  done
  ip link del realbr0
fi
ip route del blackhole 10.244.0.0/16 2>/dev/null || true
rm -rf "$node_dir/ipam"

# ip_forward and the kernel tunables the kubelet set, as they were.
if [[ -f $node_dir/sysctl.orig ]]; then
  while read -r setting; do sysctl -qw "$setting"; done <"$node_dir/sysctl.orig"
  rm -f "$node_dir/sysctl.orig"
fi
# The kubelet's QoS cgroups (cgroupfs driver), now empty.
for dir in /sys/fs/cgroup/*/kubepods; do
  if [[ -d $dir ]]; then find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done
if [[ -f $node_dir/created-paths ]]; then
  while read -r path; do rm -rf "$path"; done <"$node_dir/created-paths"
  rm -f "$node_dir/created-paths"
fi
