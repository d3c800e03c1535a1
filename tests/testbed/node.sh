# shellcheck shell=bash disable=SC2154 # here, kc, kubectl, server, pki, client_ext: from up.sh
# The test bed's one real node, real-0: containerd + kubelet + bridge CNI,
# kube-proxy, CoreDNS, kube-router (NetworkPolicy only) and the local-path
# provisioner behind the default StorageClass. Sourced by up.sh once the
# control plane and the registries run; uses its start/leaf helpers.
#
# Everything listens on 127.0.0.1 or on the bridge (but kube-router's health
# port, which the rules below fence off). Pods get addresses on
# realbr0 (10.85.0.0/24) and routes to the bridge and the Service range only;
# the rules below drop whatever would still head for the external interface.
# The node is tainted, so only pods that ask for it (nodeSelector
# kubernetes.io/hostname=real-0 or devenv.test/real-node=true, plus a
# toleration) leave the kwok nodes.

real_node=real-0
real_taint=devenv.test/real-node
pod_cidr=10.85.0.0/24
bridge_ip=10.85.0.1
dns_ip=10.96.0.10
node_dir=$TESTBED_DIR/node
# containerd's state and socket on tmpfs, apart from a system containerd's
# /run/containerd (Docker's, say), which it would otherwise take over.
containerd_state=/run/kubectl-devenv-testbed/containerd
mkdir -p "$node_dir"/{cni,certs.d/127.0.0.1:5000,kubelet,pod-logs,local-path} "$TESTBED_DIR"/{containerd,storage}
# The kubelet's directory, which holds every pod's emptyDirs, gets a journaled
# ext4 of its own, as a node's disk has. This VM's root filesystem is ext4
# without a journal, and there each new inode skips past those freed in the
# last minutes (ext4's recently_deleted check): extracting 10,000 files soon
# after deleting as many took 1.5-4 s instead of 0.3 s. Sparse, so it costs
# only what pods write; umounting it in node-down.sh frees the loop device.
if ! mountpoint -q "$node_dir/kubelet"; then
  truncate -s 16G "$node_dir/kubelet.img"
  mkfs.ext4 -q -F "$node_dir/kubelet.img"
  mount -o loop,noinit_itable "$node_dir/kubelet.img" "$node_dir/kubelet"
fi
# node-down.sh needs the same binaries without running build.sh.
printf 'K8S_BIN=%s\nK8S_NODE_BIN=%s\ncontainerd_state=%s\n' "$K8S_BIN" "$K8S_NODE_BIN" "$containerd_state" >"$node_dir/bin.env"
kctl() { "$kubectl" --kubeconfig="$kc" "$@"; }

# --- what the node changes on the host, recorded once so down.sh undoes it ---

# Paths the kubelet, containerd and CNI create outside their configured
# directories; down.sh removes only those that did not exist before.
# (/run/containerd holds the shims' sockets.)
for path in /var/lib/kubelet /var/lib/cni /var/log/containers /run/containerd /run/netns /run/kubectl-devenv-testbed; do
  [[ -e $path ]] || grep -qxF "$path" "$node_dir/created-paths" 2>/dev/null || echo "$path" >>"$node_dir/created-paths"
done
# ip_forward (the bridge needs it) and the tunables the kubelet sets at start.
if [[ ! -f $node_dir/sysctl.orig ]]; then
  sysctl net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes | sed 's/ = /=/' >"$node_dir/sysctl.orig"
fi

# --- network, in place before any pod starts ---------------------------------

ext_if=$(ip -4 route show default | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
[[ -n $ext_if ]] || log "network: no default route; nothing to fence off"
if ! ip link show realbr0 >/dev/null 2>&1; then
  log "network: creating bridge realbr0 $bridge_ip/24"
  ip link add realbr0 type bridge
fi
ip addr replace "$bridge_ip/24" dev realbr0
# No IPv6 on the bridge: pods cannot reach the host's [::] listeners by link-local.
[[ -e /proc/sys/net/ipv6/conf/realbr0 ]] && sysctl -qw net.ipv6.conf.realbr0.disable_ipv6=1
ip link set realbr0 up
# Service IPs stay on the bridge; kwok's fake pod IPs (also kube-proxy's DNAT
# targets for Services with kwok endpoints) go nowhere.
ip route replace "10.96.0.0/16" dev realbr0
ip route replace blackhole 10.244.0.0/16

# chain TABLE HOOK RULE...: (re)fill TESTBED-HOOK in TABLE and hook it in first.
# In the mangle table, no ACCEPT that kube-proxy or kube-router later put in
# front of the filter table's chains can bypass these drops.
chain() {
  local table=$1 hook=$2 cmd=${IPT:-iptables}
  shift 2
  $cmd -t "$table" -N "TESTBED-$hook" 2>/dev/null || $cmd -t "$table" -F "TESTBED-$hook"
  local rule
  for rule in "$@"; do
    # shellcheck disable=SC2086 # each rule is a list of words
    $cmd -t "$table" -A "TESTBED-$hook" $rule
  done
  $cmd -t "$table" -C "$hook" -j "TESTBED-$hook" 2>/dev/null || $cmd -t "$table" -I "$hook" 1 -j "TESTBED-$hook"
}
ranges=(10.85.0.0/16 10.96.0.0/16 10.244.0.0/16)
prerouting=() postrouting=()
if [[ -n $ext_if ]]; then
  for range in "${ranges[@]}"; do
    prerouting+=("-i $ext_if -d $range -j DROP")
    postrouting+=("-o $ext_if -d $range -j DROP")
  done
  # kube-router's health port listens on every address.
  prerouting+=("-i $ext_if -p tcp --dport 20244 -j DROP")
  postrouting+=("-o $ext_if -s 10.85.0.0/16 -j DROP")
fi
chain mangle PREROUTING "${prerouting[@]}"
# Forwarding is for pod traffic on the bridge only: nothing from the pods
# leaves through another interface, nothing else reaches them.
chain mangle FORWARD "-i realbr0 ! -o realbr0 -j DROP" "! -i realbr0 -o realbr0 -j DROP"
chain mangle POSTROUTING "${postrouting[@]}"
IPT=ip6tables chain mangle FORWARD "-i realbr0 -j DROP" "-o realbr0 -j DROP"
sysctl -qw net.ipv4.ip_forward=1

# Pods get no default route: only the bridge's own subnet and the Services.
cat >"$node_dir/cni/10-testbed.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "testbed",
  "plugins": [
    {
      "type": "bridge", "bridge": "realbr0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$node_dir/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$bridge_ip"}]],
        "routes": [{"dst": "10.96.0.0/16"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# --- containerd ----------------------------------------------------------------

printf 'server = "http://127.0.0.1:5000"\n\n[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n' \
  >"$node_dir/certs.d/127.0.0.1:5000/hosts.toml"
# restrict_oom_score_adj: the VM withholds CAP_SYS_RESOURCE, so runc cannot
# lower a sandbox's oom_score_adj to the -998 the CRI asks for.
cat >"$node_dir/containerd.toml" <<EOF
version = 2
root = "$TESTBED_DIR/containerd"
state = "$containerd_state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$containerd_state/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${TESTBED_IMAGE_PAUSE:?images.sh push printed no TESTBED_IMAGE_PAUSE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$node_dir/certs.d"
EOF
ctr=(ctr --address "$containerd_state/containerd.sock")
start containerd "${ctr[*]} version" -- containerd --config "$node_dir/containerd.toml"

# --- kubelet -------------------------------------------------------------------

leaf "$real_node" "/O=system:nodes/CN=system:node:$real_node" "$client_ext"
leaf kube-proxy "/CN=system:kube-proxy" "$client_ext"
# node_kubeconfig NAME USER: a kubeconfig with that certificate.
node_kubeconfig() {
  local file=$node_dir/$1.kubeconfig
  [[ -f $file ]] && return
  "$kubectl" --kubeconfig="$file.tmp" config set-cluster testbed --server="$server" \
    --certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
  "$kubectl" --kubeconfig="$file.tmp" config set-credentials "$2" --client-certificate="$pki/$1.crt" \
    --client-key="$pki/$1.key" --embed-certs >/dev/null
  "$kubectl" --kubeconfig="$file.tmp" config set-context testbed --cluster=testbed --user="$2" >/dev/null
  "$kubectl" --kubeconfig="$file.tmp" config use-context testbed >/dev/null
  mv "$file.tmp" "$file"
}
node_kubeconfig "$real_node" "system:node:$real_node"
node_kubeconfig kube-proxy system:kube-proxy

# Pods never see the VM's resolver: dnsPolicy Default gets no nameserver.
echo "search cluster.local" >"$node_dir/resolv.conf"
# The API server calls kubelets without a client certificate, hence anonymous
# and AlwaysAllow: acceptable only because the kubelet listens on 127.0.0.1.
cat >"$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10350
healthzBindAddress: 127.0.0.1
healthzPort: 10348
readOnlyPort: 0
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$containerd_state/containerd.sock
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDNS: [$dns_ip]
clusterDomain: cluster.local
resolvConf: $node_dir/resolv.conf
podLogsDir: $node_dir/pod-logs
registerWithTaints: [{key: $real_taint, value: "true", effect: NoSchedule}]
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
# A passing disk pressure (builds beside the test bed) clears in seconds, not five minutes.
evictionPressureTransitionPeriod: 10s
EOF
# --cloud-provider=external: the kubelet refuses a loopback --node-ip, so it
# sets no address and the addresses are patched in below.
start kubelet "curl -fsS http://127.0.0.1:10348/healthz" -- \
  "$K8S_NODE_BIN/kubelet" --config="$node_dir/kubelet.yaml" --kubeconfig="$node_dir/$real_node.kubeconfig" \
  --hostname-override="$real_node" --cloud-provider=external --root-dir="$node_dir/kubelet" \
  --cert-dir="$node_dir/kubelet/pki" --node-labels="$real_taint=true"
# The kubelet sets vm.overcommit_memory=1, kernel.panic=10 and
# kernel.panic_on_oops=1 once at start; the machine keeps its own.
grep -v '^net\.ipv4\.ip_forward=' "$node_dir/sysctl.orig" | while read -r setting; do sysctl -qw "$setting"; done
wait_for "kubelet registering node $real_node (log: $TESTBED_DIR/logs/kubelet.log)" 60 kctl get node "$real_node"
kctl patch node "$real_node" --subresource=status --type=merge \
  -p "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"127.0.0.1\"},{\"type\":\"Hostname\",\"address\":\"$real_node\"}]}}" >/dev/null
# kube-router reads the pod range from the node (the controller-manager allocates none).
[[ -n $(kctl get node "$real_node" -o 'jsonpath={.spec.podCIDR}') ]] ||
  kctl patch node "$real_node" -p "{\"spec\":{\"podCIDR\":\"$pod_cidr\",\"podCIDRs\":[\"$pod_cidr\"]}}" >/dev/null
kctl taint node "$real_node" node.cloudprovider.kubernetes.io/uninitialized- >/dev/null 2>&1 || true
kctl wait --for=condition=Ready "node/$real_node" --timeout=60s >/dev/null ||
  die "node $real_node not Ready (log: $TESTBED_DIR/logs/kubelet.log)"

# --- Services, DNS, NetworkPolicy, storage -------------------------------------

# The conntrack and localhost flags keep kube-proxy from changing host sysctls.
# With the default --iptables-min-sync-period of 1 s, a Service whose
# EndpointSlice is already ready (all `up` can see) was still unrouted for up
# to 2 s on this busy 2-core bed, and a test's first connection went out
# un-NATed: "No route to host" in 2 runs of 10. Syncing on every change
# closes that window.
start kube-proxy "curl -fsS http://127.0.0.1:10356/healthz" -- \
  "$K8S_NODE_BIN/kube-proxy" --kubeconfig="$node_dir/kube-proxy.kubeconfig" --hostname-override="$real_node" \
  --proxy-mode=iptables --cluster-cidr="$pod_cidr" --iptables-min-sync-period=0s \
  --healthz-bind-address=127.0.0.1:10356 --metrics-bind-address=127.0.0.1:10349 \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --iptables-localhost-nodeports=false --nodeport-addresses="$bridge_ip/32"

kctl apply -f "$here/node.yaml" >/dev/null

# CoreDNS on the host, on the bridge address; no forward plugin, so names
# outside the cluster get REFUSED instead of leaving the machine.
cat >"$node_dir/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $bridge_ip
    errors
    log
    health 127.0.0.1:10353
    ready 127.0.0.1:10354
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $kc
        pods insecure
        ttl 5
    }
    cache 5
}
EOF
start coredns "curl -fsS http://127.0.0.1:10354/ready" -- "$COREDNS_BIN/coredns" -conf "$node_dir/Corefile"

# kube-router v2.1.0 has reported security flaws: it runs here only as the
# firewall of a node that listens on loopback and the bridge.
start kube-router "curl -fsS http://127.0.0.1:20244/healthz" -- \
  "$KUBE_ROUTER_BIN/kube-router" --kubeconfig="$kc" --hostname-override="$real_node" \
  --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
  --service-cluster-ip-range=10.96.0.0/16 --metrics-port=0 --health-port=20244

# The helper pods that create and delete volume directories run on the
# volume's node; on kwok nodes a Stage in kwok.yaml completes them.
cat >"$node_dir/local-path/config.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$TESTBED_DIR/storage"]}],
 "cmdTimeoutSeconds": 60}
EOF
cat >"$node_dir/local-path/helper-pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
  labels: {devenv.test/local-path-helper: "true"}
spec:
  priorityClassName: system-node-critical
  containers:
    - name: helper-pod
      image: ${TESTBED_IMAGE_BUSYBOX:?images.sh push printed no TESTBED_IMAGE_BUSYBOX}
      imagePullPolicy: IfNotPresent
EOF
start local-path-provisioner "grep -q 'Provisioner started\\|Started provisioner controller' $TESTBED_DIR/logs/local-path-provisioner.log" -- \
  "$LOCAL_PATH_PROVISIONER_BIN/local-path-provisioner" --debug start --kubeconfig="$kc" \
  --namespace=kube-system --service-account-name=local-path-provisioner-service-account \
  --configmap-name=local-path-config --config="$node_dir/local-path/config.json" \
  --helper-pod-file="$node_dir/local-path/helper-pod.yaml" --helper-image="$TESTBED_IMAGE_BUSYBOX"
