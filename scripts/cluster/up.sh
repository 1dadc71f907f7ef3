#!/usr/bin/env bash
# Starts the local control plane of `make cluster-test` from the binaries scripts/cluster/build.sh
# built: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (one fake node:
# pods are scheduled and reported Running/Ready but run no code), the KEDA operator and metrics
# adapter, and the RabbitMQ cluster operator. Every process listens on 127.0.0.1 only, on free
# ports, with its state in a new temporary directory; it waits until the API server is ready,
# the node is Ready, the external metrics API is Available and the CRDs are Established.
#
#   scripts/cluster/up.sh            prints the state directory (stdout's last line); in it:
#     kubeconfig                     cluster-admin client certificate for the API server
#     env                            KUBECONFIG=... and CLUSTER_STATE=... to source
#     logs/NAME.log                  each process's log
#   scripts/cluster/down.sh DIR      stops everything and removes DIR
#
# The CRDs: KEDA's and the RabbitMQ cluster operator's from their modules, the
# Prometheus-operator's from its module (build.sh copies them into the cache).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$("$here/build.sh")
crds=$(dirname "$bin")/crds
stages=$(dirname "$bin")/kwok
state=$(mktemp -d "${TMPDIR:-/tmp}/careerops-cluster.XXXXXX")
mkdir -p "$state/logs" "$state/pki" "$state/keda-certs"
started=$SECONDS
fail() {
  echo "cluster-up: $*; the last log lines:" >&2
  tail -n 5 "$state"/logs/*.log >&2 || true
  "$here/down.sh" "$state" >&2 || true
  exit 1
}
trap 'fail "interrupted"' INT TERM

# Free ports on 127.0.0.1, one per name (the kernel picks them; they are released at once).
read -r P_ETCD P_PEER P_API P_ADAPTER P_GRPC P_ADAPTER_METRICS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

pki=$state/pki
# cert NAME SUBJECT [SANS] [CA]: a key and a certificate signed by CA (pki/ca by default).
cert() {
  local name=$1 subj=$2 sans=${3:-} ca=${4:-ca} ext
  ext=$pki/$name.ext
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"; [[ -z $sans ]] || echo "subjectAltName=$sans"; } >"$ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
}
for ca in ca front-proxy-ca; do
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/$ca.key" -subj "/CN=careerops-cluster-$ca" \
    -days 2 -out "$pki/$ca.crt" 2>/dev/null
done
cert apiserver /CN=kube-apiserver "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes.default.svc"
cert admin "/O=system:masters/CN=careerops-admin"
cert front-proxy-client /CN=front-proxy-client "" front-proxy-ca
cert keda /CN=keda "IP:127.0.0.1,DNS:localhost,DNS:keda-metrics-apiserver.keda.svc,DNS:keda-operator.keda.svc"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
cp "$pki/ca.crt" "$state/keda-certs/ca.crt"
cp "$pki/keda.crt" "$state/keda-certs/tls.crt"
cp "$pki/keda.key" "$state/keda-certs/tls.key"

export KUBECONFIG=$state/kubeconfig
cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: careerops
    cluster: {server: "https://127.0.0.1:$P_API", certificate-authority: "$pki/ca.crt"}
users:
  - name: admin
    user: {client-certificate: "$pki/admin.crt", client-key: "$pki/admin.key"}
contexts:
  - name: careerops
    context: {cluster: careerops, user: admin, namespace: default}
current-context: careerops
EOF
printf 'export KUBECONFIG=%q CLUSTER_STATE=%q\n' "$KUBECONFIG" "$state" >"$state/env"

# start NAME COMMAND...: a background process, its pid in pids/NAME, its output in logs/NAME.log.
mkdir -p "$state/pids"
start() {
  local name=$1
  shift
  "$@" >"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/pids/$name"
}
# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, or fail. The bounds are generous: in
# CI the plane starts beside lint and the tests on 2 cores. Each `kubectl wait` gets 30 s: it
# lists what it waits for within its own --timeout, and with 1 s the CRDs (2.3 MB of them, the
# Prometheus operator's the most) took 1.2-1.4 s beside the fault suite, so the wait failed
# every time, Established or not, until the deadline (CI failed so, twice).
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what not ready within $((SECONDS - started)) s"
    for p in "$state"/pids/*; do kill -0 "$(cat "$p")" 2>/dev/null || fail "$(basename "$p") exited"; done
    sleep 0.3
  done
}
kubectl() { "$bin/kube" kubectl "$@"; }

start etcd "$bin/etcd" --name default --data-dir "$state/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$P_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_PEER" \
  --initial-cluster "default=http://127.0.0.1:$P_PEER" --listen-metrics-urls ""
wait_for etcd 120 curl -fsS "http://127.0.0.1:$P_ETCD/health"

start kube-apiserver "$bin/kube" apiserver --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
  --secure-port "$P_API" --etcd-servers "http://127.0.0.1:$P_ETCD" --cert-dir "$state/apiserver" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
  --service-cluster-ip-range 10.96.0.0/16 --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key"
api() { curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$P_API$1"; }
wait_for kube-apiserver 240 api /readyz

common=(--kubeconfig "$KUBECONFIG" --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG"
  --leader-elect=false --secure-port 0)
start kube-controller-manager "$bin/kube" controller-manager "${common[@]}" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=false
start kube-scheduler "$bin/kube" scheduler "${common[@]}"

# kwok's configuration gets no defaults from a file: every option is set. The stages are kwok's
# own (fast node, heartbeat with lease, general pod) plus one that completes the bare
# `restartPolicy: Never` pods of `helm test` (kwok's pod-complete only completes Job pods).
{
  cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.0.0.0/16
  nodeIP: 127.0.0.1
  manageAllNodes: true
  enableDebuggingHandlers: false
  enableContentionProfiling: false
  enableProfilingHandler: false
  podPlayStageParallelism: 4
  nodePlayStageParallelism: 4
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 4
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
EOF
  for f in "$stages"/*.yaml "$here"/kwok-stage-*.yaml; do
    echo ---
    cat "$f"
  done
} >"$state/kwok.yaml"
start kwok "$bin/kwok" --kubeconfig "$KUBECONFIG" --config "$state/kwok.yaml"

# The fake node, the namespaces of the operators, and the external metrics API served by the
# KEDA adapter on the host: the aggregator reaches it through an ExternalName Service.
cat >"$state/plane.yaml" <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, topology.kubernetes.io/zone: zone-a}
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
  capacity: {cpu: "32", memory: 128Gi, pods: "110"}
---
apiVersion: v1
kind: Namespace
metadata: {name: keda}
---
apiVersion: v1
kind: Namespace
metadata: {name: rabbitmq-system}
---
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: $P_ADAPTER, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {name: keda-metrics-apiserver, namespace: keda, port: $P_ADAPTER}
EOF
kubectl apply --server-side -f "$crds" -f "$state/plane.yaml" >"$state/logs/apply.log" 2>&1 ||
  fail "applying the CRDs and the plane failed: $(tail -n 3 "$state/logs/apply.log")"
wait_for "the CRDs" 240 kubectl wait --for condition=Established --timeout 30s crd --all

keda_env=(env KUBECONFIG="$KUBECONFIG" WATCH_NAMESPACE="" POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda)
start keda-operator "${keda_env[@]}" "$bin/keda-operator" --leader-elect=false \
  --metrics-bind-address 0 --health-probe-bind-address 0 \
  --metrics-service-bind-address "127.0.0.1:$P_GRPC" --cert-dir "$state/keda-certs" --ca-dir "$state/keda-certs" \
  --enable-cert-rotation=false --enable-webhook-patching=false --enable-apiservice-patching=false
start keda-adapter "${keda_env[@]}" "$bin/keda-adapter" --bind-address 127.0.0.1 --secure-port "$P_ADAPTER" \
  --cert-dir "$state/keda-certs" --tls-cert-file "$state/keda-certs/tls.crt" \
  --tls-private-key-file "$state/keda-certs/tls.key" --port "$P_ADAPTER_METRICS" \
  --metrics-service-address "127.0.0.1:$P_GRPC" --lister-kubeconfig "$KUBECONFIG" \
  --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG"
start rabbitmq-operator env KUBECONFIG="$KUBECONFIG" OPERATOR_NAMESPACE=rabbitmq-system \
  "$bin/rabbitmq-operator" --metrics-bind-address 0

wait_for "the kwok node" 240 kubectl wait --for condition=Ready --timeout 30s node/kwok-node-0
wait_for "the external metrics API" 240 kubectl wait --for condition=Available --timeout 30s \
  apiservice/v1beta1.external.metrics.k8s.io
wait_for "the default ServiceAccount" 120 kubectl get serviceaccount default -n default
trap - INT TERM
echo "cluster-up: ready in $((SECONDS - started)) s: source $state/env (logs in $state/logs)" >&2
echo "$state"
