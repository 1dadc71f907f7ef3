#!/usr/bin/env bash
# Builds the local control plane of `make cluster-test` once, from the pinned wrapper modules
# in tools/cluster/ (etcd, kube-apiserver/controller-manager/scheduler, kwok, KEDA operator
# and metrics adapter, RabbitMQ cluster operator), into
#
#   ${CAREEROPS_CLUSTER_CACHE:-$HOME/.cache/careerops-cluster}/<key>/bin
#
# where <key> is a hash of the wrapper modules (go.mod, go.sum, *.go) and the Go version: a
# changed pin builds into a new directory, an unchanged one is reused at once. The sha256 of
# every binary is written to <key>/SHA256SUMS and printed. Prints the bin directory last.
#
#   scripts/cluster/build.sh            (build if needed; stdout's last line is the bin dir)
#   scripts/cluster/build.sh --cached   (build nothing: exit 1 unless the binaries are cached)
#
# Beside bin/ it puts what up.sh applies, taken from the pinned modules (never hand-written):
# crds/ (KEDA's and the RabbitMQ cluster operator's config/crd/bases, the Prometheus
# operator's ServiceMonitor and PrometheusRule CRDs) and kwok/ (kwok's node and pod stages).
#
# A cold build is ~30-45 min of CPU (nice -n 19 keeps it behind other work on the machine).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PATH:/usr/local/go/bin"

KUBE_VERSION=v1.36.3 # must match tools/cluster/kube/go.mod: the API server reports it
# The newest prometheus-operator main module the Go module proxy serves (its CRDs are the
# same monitoring.coreos.com/v1 the chart's v0.95.2 API types describe).
PROMETHEUS_OPERATOR=github.com/prometheus-operator/prometheus-operator@v0.85.0
CACHE=${CAREEROPS_CLUSTER_CACHE:-$HOME/.cache/careerops-cluster}

key=$({
  go version
  echo "$KUBE_VERSION $PROMETHEUS_OPERATOR"
  find tools/cluster -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs sha256sum
} | sha256sum | cut -c1-16)
dir=$CACHE/$key
bin=$dir/bin

if [[ -f $dir/SHA256SUMS ]] && (cd "$bin" && sha256sum --quiet -c ../SHA256SUMS) >&2; then
  echo "cluster-build: cached in $dir" >&2
  sed 's/^/  /' "$dir/SHA256SUMS" >&2
  echo "$bin"
  exit 0
fi

if [[ ${1:-} == --cached ]]; then
  echo "cluster-build: not built for these pins ($dir)" >&2
  exit 1
fi
mkdir -p "$bin"
# The version the API server reports (the chart's kubeVersion check reads it), as
# kubernetes' hack/lib/version.sh sets it.
ldflags=()
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=("-X $pkg.gitVersion=$KUBE_VERSION" "-X $pkg.gitMajor=$(cut -d. -f1 <<<"${KUBE_VERSION#v}")"
    "-X $pkg.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION")" "-X $pkg.gitTreeState=clean")
done

# build MODULE OUTPUT LDFLAGS PACKAGE: one binary from one wrapper module, timed.
# A binary already in bin/ was built from these pins (each is moved there only once complete):
# an interrupted cold build resumes where it stopped.
build() {
  local mod=$1 out=$2 flags=$3 pkg=$4 start=$SECONDS
  if [[ -x $bin/$out ]]; then
    echo "cluster-build: $out already built" >&2
    return
  fi
  echo "cluster-build: $out ($mod: $pkg)" >&2
  (cd "tools/cluster/$mod" && nice -n 19 go build -trimpath -ldflags "-s -w $flags" -o "$bin/$out.tmp.$$" "$pkg")
  mv "$bin/$out.tmp.$$" "$bin/$out"  # a build of its own: another may run beside it
  echo "cluster-build: $out built in $((SECONDS - start)) s" >&2
}

TIMEFORMAT='cluster-build: all built in %R s wall, %U s user + %S s sys CPU'
time {
  build etcd etcd "" .
  build kube kube "${ldflags[*]}" .
  build kwok kwok "" sigs.k8s.io/kwok/cmd/kwok
  build rabbitmq rabbitmq-operator "" github.com/rabbitmq/cluster-operator/v2
  # KEDA last: with every scaler's cloud SDK it is the largest (~3,700 packages).
  build keda keda-operator "" github.com/kedacore/keda/v2/cmd/operator
  build keda keda-adapter "" github.com/kedacore/keda/v2/cmd/adapter
}

# module_dir WRAPPER MODULE: where the Go module cache holds MODULE as WRAPPER pins it.
module_dir() { go -C "tools/cluster/$1" list -m -f '{{.Dir}}' "$2"; }
mkdir -p "$dir/crds" "$dir/kwok"
cp "$(module_dir keda github.com/kedacore/keda/v2)"/config/crd/bases/*.yaml \
  "$(module_dir rabbitmq github.com/rabbitmq/cluster-operator/v2)"/config/crd/bases/*.yaml "$dir/crds/"
prom=$(cd "$dir" && GOFLAGS= go mod download -json "$PROMETHEUS_OPERATOR" | jq -r .Dir)
cp "$prom"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$dir/crds/"
kwok=$(module_dir kwok sigs.k8s.io/kwok)/kustomize/stage
cp "$kwok"/node/fast/node-initialize.yaml "$kwok"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  "$kwok"/pod/general/pod-*.yaml "$dir/kwok/"
chmod -R u+w "$dir/crds" "$dir/kwok"

(cd "$bin" && sha256sum -- *) >"$dir/SHA256SUMS.tmp"
mv "$dir/SHA256SUMS.tmp" "$dir/SHA256SUMS"
echo "cluster-build: sha256 of the binaries ($dir/SHA256SUMS):" >&2
sed 's/^/  /' "$dir/SHA256SUMS" >&2
echo "$bin"
