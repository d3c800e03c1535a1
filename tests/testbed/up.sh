#!/usr/bin/env bash
# Starts the test bed: a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) with kwok nodes, one real node
# (node.sh), the real servers that kwok pods are forwarded to (MariaDB,
# Redis) and two OCI registries. Idempotent: what already runs is left alone.
#
# Afterwards `source $TESTBED_DIR/env` gives KUBECONFIG and the TESTBED_* settings.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/lib.sh
source "$here/lib.sh"

pki=$TESTBED_DIR/pki
mkdir -p "$TESTBED_DIR"/{pki,logs,pids,kwok}
# The real node's images build (minutes when cold) while build.sh compiles;
# in a session of their own, so that a failed start stops them too.
images_log=$TESTBED_DIR/logs/images-build.log
setsid "$here/images.sh" build >"$images_log" 2>&1 &
images_pid=$!
trap '[[ -z $images_pid ]] || kill -- "-$images_pid" 2>/dev/null || true' EXIT
build_env=$("$here/build.sh") || die "build.sh failed (output above)"
eval "$build_env"
if ! wait "$images_pid"; then
  images_pid=
  tail -n 15 "$images_log" >&2
  die "images: build failed (log: $images_log)"
fi
images_pid=
tools=$TESTBED_DIR/bin
mkdir -p "$tools"

# --- processes ---------------------------------------------------------------

# start NAME HEALTH_COMMAND -- COMMAND...: start COMMAND in the background
# unless NAME already runs, record its pid, then wait for HEALTH_COMMAND.
# A process that exits meanwhile fails at once, naming its log.
start() {
  local name=$1 health=$2 log=$TESTBED_DIR/logs/$1.log
  shift 3
  if running "$name"; then
    log "$name: already running (pid $(cat "$TESTBED_DIR/pids/$name.pid"))"
  else
    log "$name: starting"
    nohup "$@" >"$log" 2>&1 &
    echo $! >"$TESTBED_DIR/pids/$name.pid"
  fi
  local deadline=$((SECONDS + 90))
  until bash -c "$health" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 15 "$log" >&2
      die "$name exited while starting (log: $log)"
    fi
    ((SECONDS < deadline)) || die "$name not healthy after 90s (log: $log)"
    sleep 0.2
  done
}

# --- PKI: one CA, separate leaf certificates --------------------------------

# leaf NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
leaf() {
  local name=$1 subject=$2 ext=$3
  [[ -f $pki/$name.crt ]] && return
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subject" \
    -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

if [[ ! -f $pki/ca.crt ]]; then
  log "pki: creating a CA and certificates in $pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 30 \
    -subj "/CN=kubectl-devenv-testbed-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
leaf apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
  'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
  'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc')"
client_ext=$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=clientAuth')
leaf admin "/O=system:masters/CN=admin" "$client_ext"
leaf restricted "/CN=restricted" "$client_ext"
if [[ ! -f $pki/sa.key ]]; then
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
# A static token, handed out by the exec credential plugin (what EKS does with IAM).
if [[ ! -f $pki/tokens.csv ]]; then
  token=$(openssl rand -hex 24)
  echo "$token" >"$pki/exec-token"
  echo "$token,exec-user,exec-user-uid,\"system:masters\"" >"$pki/tokens.csv"
fi

# --- kubeconfigs ----------------------------------------------------------------

kc=$TESTBED_DIR/kubeconfig
server=https://127.0.0.1:6443
kubectl=$K8S_BIN/kubectl
if [[ ! -f $kc ]]; then
  k() { "$kubectl" --kubeconfig="$kc" config "$@" >/dev/null; }
  k set-cluster testbed --server="$server" --certificate-authority="$pki/ca.crt" --embed-certs
  k set-credentials admin --client-certificate="$pki/admin.crt" --client-key="$pki/admin.key" --embed-certs
  k set-credentials restricted --client-certificate="$pki/restricted.crt" --client-key="$pki/restricted.key" --embed-certs
  k set-context testbed --cluster=testbed --user=admin
  k set-context testbed-second --cluster=testbed --user=admin --namespace=second
  k set-context testbed-restricted --cluster=testbed --user=restricted --namespace=restricted-a
  k use-context testbed
fi
exec_kc=$TESTBED_DIR/exec.kubeconfig
if [[ ! -f $exec_kc ]]; then
  k() { "$kubectl" --kubeconfig="$exec_kc" config "$@" >/dev/null; }
  k set-cluster testbed --server="$server" --certificate-authority="$pki/ca.crt" --embed-certs
  k set-credentials exec-user --exec-api-version=client.authentication.k8s.io/v1 \
    --exec-command="$here/exec-credential.sh" --exec-env="TESTBED_TOKEN_FILE=$pki/exec-token" \
    --exec-interactive-mode=Never
  k set-context testbed-exec --cluster=testbed --user=exec-user
  k use-context testbed-exec
fi

# --- control plane ------------------------------------------------------------

curl_admin=(curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")

start etcd "curl -fsS http://127.0.0.1:2379/health | grep -q true" -- \
  "$ETCD_BIN/etcd" --name=testbed --data-dir="$TESTBED_DIR/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=testbed=http://127.0.0.1:2380 --unsafe-no-fsync=true

start kube-apiserver "${curl_admin[*]} $server/readyz" -- \
  "$K8S_BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP,Hostname

start kube-controller-manager "curl -fsSk https://127.0.0.1:10257/healthz" -- \
  "$K8S_BIN/kube-controller-manager" --kubeconfig="$kc" --leader-elect=false --bind-address=127.0.0.1 \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --use-service-account-credentials=false

start kube-scheduler "curl -fsSk https://127.0.0.1:10259/healthz" -- \
  "$K8S_BIN/kube-scheduler" --kubeconfig="$kc" --leader-elect=false --bind-address=127.0.0.1

# kwok serves exec, logs and port-forward for every pod from this machine.
kwok_dir=$TESTBED_DIR/kwok
touch "$kwok_dir/pod.log" "$kwok_dir/pod-previous.log"
sed -e "s|@KWOK_DIR@|$kwok_dir|g" "$here/kwok.yaml" >"$kwok_dir/kwok.yaml"
start kwok "curl -fsS http://127.0.0.1:10250/healthz" -- \
  "$KWOK_BIN/kwok" --kubeconfig="$kc" --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=127.0.0.1 --node-port=10250 --server-address=127.0.0.1:10250 \
  --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 \
  --config="$KWOK_STAGES" --config="$kwok_dir/kwok.yaml"

"$kubectl" --kubeconfig="$kc" apply -f "$here/cluster.yaml" >/dev/null
# Only the kwok nodes: a real-0 left from an earlier run is Ready once its kubelet is back.
"$kubectl" --kubeconfig="$kc" wait --for=condition=Ready node --selector=type=kwok --timeout=60s >/dev/null
# The controller-manager creates each namespace's `default` ServiceAccount;
# pods cannot be created before it exists.
wait_for "serviceaccount default" 60 "$kubectl" --kubeconfig="$kc" -n default get serviceaccount default

# --- real servers behind the pods ----------------------------------------------

db=$TESTBED_DIR/mariadb
if [[ ! -d $db/data/mysql ]]; then
  log "mariadb: initialising $db"
  mkdir -p "$db"
  mariadb-install-db --no-defaults --datadir="$db/data" --user="$(id -un)" \
    --auth-root-authentication-method=socket --skip-test-db >"$TESTBED_DIR/logs/mariadb-install.log" 2>&1
fi
start mariadb "mariadb-admin --no-defaults --socket=$db/mariadb.sock ping" -- \
  mariadbd --no-defaults --datadir="$db/data" --socket="$db/mariadb.sock" --pid-file="$db/mariadb.pid" \
  --port=3306 --bind-address=127.0.0.1 --skip-name-resolve --user="$(id -un)" --log-error="$TESTBED_DIR/logs/mariadb-error.log"
mariadb --no-defaults --socket="$db/mariadb.sock" -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS app;
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app-password';
GRANT ALL PRIVILEGES ON app.* TO 'app'@'%';
SQL

mkdir -p "$TESTBED_DIR/redis"
start redis "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG" -- \
  redis-server --bind 127.0.0.1 --port 6379 --dir "$TESTBED_DIR/redis" --save "" --appendonly no \
  --protected-mode no

registry_config() { # PORT ROOT [AUTH_YAML]
  printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: "127.0.0.1:%s"}\n%s\n' \
    "$2" "$1" "${3:-}"
}
mkdir -p "$TESTBED_DIR/registry"
registry_config 5000 "$TESTBED_DIR/registry/open" >"$TESTBED_DIR/registry/open.yml"
[[ -f $TESTBED_DIR/registry/htpasswd ]] ||
  htpasswd -Bbn devenv devenv-registry-pass >"$TESTBED_DIR/registry/htpasswd"
registry_config 5001 "$TESTBED_DIR/registry/auth" \
  "auth: {htpasswd: {realm: testbed, path: $TESTBED_DIR/registry/htpasswd}}" >"$TESTBED_DIR/registry/auth.yml"
start registry "curl -fsS http://127.0.0.1:5000/v2/" -- docker-registry serve "$TESTBED_DIR/registry/open.yml"
start registry-auth "curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:5001/v2/ | grep -q 401" -- \
  docker-registry serve "$TESTBED_DIR/registry/auth.yml"

# --- the real node ----------------------------------------------------------------

# images.sh prints one TESTBED_IMAGE_<NAME>=<ref> line per image it pushed.
pushed=$("$here/images.sh" push 127.0.0.1:5000) || die "images: push to 127.0.0.1:5000 failed (output above)"
image_env=$(grep -E '^TESTBED_IMAGE_[A-Z0-9_]+=[^ ]+$' <<<"$pushed" || true)
image_exports=
while IFS='=' read -r key ref; do
  [[ -n $key ]] || continue
  export "$key=$ref"
  image_exports+="export $key=$ref"$'\n'
done <<<"$image_env"
# shellcheck source=tests/testbed/node.sh
source "$here/node.sh"

# --- what the tests read ------------------------------------------------------

ln -sf "$KREW_BIN/krew" "$tools/kubectl-krew"
cat >"$TESTBED_DIR/env" <<EOF
# Written by tests/testbed/up.sh; source it to talk to the test bed.
# kwok logs: every pod's log is \$TESTBED_DIR/kwok/pod.log (previous: pod-previous.log),
#   in CRI format, one line each: "2026-01-02T03:04:05.000000000Z stdout F <text>".
# kwok exec runs the command on this machine; a non-zero exit arrives as an
#   InternalError "... exit status N", not as NonZeroExitCode as a kubelet would send.
export TESTBED_DIR=$TESTBED_DIR
export KUBECONFIG=$kc
export TESTBED_SERVER=$server
export TESTBED_KUBECTL=$kubectl
export TESTBED_EXEC_KUBECONFIG=$exec_kc
export TESTBED_MARIADB_ADDR=127.0.0.1:3306
export TESTBED_MARIADB_USER=app
export TESTBED_MARIADB_PASSWORD=app-password
export TESTBED_MARIADB_DATABASE=app
export TESTBED_REDIS_ADDR=127.0.0.1:6379
export TESTBED_REGISTRY=127.0.0.1:5000
export TESTBED_AUTH_REGISTRY=127.0.0.1:5001
export TESTBED_REGISTRY_USER=devenv
export TESTBED_REGISTRY_PASSWORD=devenv-registry-pass
export TESTBED_CRANE=$CRANE_BIN/crane
export TESTBED_KREW=$KREW_BIN/krew
export TESTBED_VALIDATE_KREW_MANIFEST=$KREW_BIN/validate-krew-manifest
export TESTBED_ACTIONLINT=$ACTIONLINT_BIN/actionlint
export TESTBED_COMPOSE_REF=$COMPOSE_REF_BIN/compose-ref
export PATH=$K8S_BIN:$tools:\$PATH
# The real node (pods need nodeSelector kubernetes.io/hostname=\$TESTBED_REAL_NODE
#   and a toleration of the NoSchedule taint \$TESTBED_REAL_NODE_TAINT).
export TESTBED_REAL_NODE=$real_node
export TESTBED_REAL_NODE_TAINT=$real_taint
export TESTBED_STORAGE_CLASS=local-path
export TESTBED_POD_CIDR=$pod_cidr
$image_exports
EOF
log "ready: source $TESTBED_DIR/env"
