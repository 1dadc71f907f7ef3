#!/usr/bin/env bash
# `make cluster-test`: builds the local control plane once (scripts/cluster/build.sh), starts it
# (up.sh), runs the Go tests tagged `cluster` in tools/chartcheck against it with client-go and
# the Helm SDK (the chart's install/upgrade/rollback/uninstall, server-side dry-runs of every
# render, the RabbitMQ operator, KEDA scaling on the local RabbitMQ), and stops it (down.sh).
# Needs the local RabbitMQ (make services). Pods run no code here: kwok fakes their lifecycle.
#
#   scripts/cluster/test.sh [go test args]      e.g. -run TestClusterKEDA -v
#   CLUSTER_KEEP=1 ...                          keep the plane and the test namespaces up
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PATH:/usr/local/go/bin"

state=$(scripts/cluster/up.sh | tail -n 1)
if [[ -z ${CLUSTER_KEEP:-} ]]; then
  trap 'scripts/cluster/down.sh "$state"' EXIT
else
  echo "cluster-test: CLUSTER_KEEP set: the plane stays up; source $state/env, stop it with scripts/cluster/down.sh $state" >&2
fi
# -parallel 16: the tests mostly wait for controllers (KEDA's polls, the HPA's windows), one
# subtest per job kind; go test's default, GOMAXPROCS, would run two at a time on 2 cores.
args=("$@")
((${#args[@]})) || args=(-run '^TestCluster')
start=$SECONDS
status=0
out=$(mktemp)
(cd tools/chartcheck && CLUSTER_KUBECONFIG=$state/kubeconfig GOFLAGS=-mod=mod \
  nice -n 19 go test -tags cluster -count=1 -timeout 25m -parallel 16 "${args[@]}" .) 2>&1 | tee "$out" || status=$?
echo "cluster-test: go test took $((SECONDS - start)) s (status $status)" >&2
if ((status != 0)); then
  echo "cluster-test: the plane's logs (last lines):" >&2
  tail -n 15 "$state"/logs/*.log >&2 || true
  # Last, where a CI log's tail shows it: which tests failed and why.
  echo "cluster-test: what failed:" >&2
  grep -E -- '--- FAIL|_test\.go:[0-9]+: .*(after [0-9]|want|rejected|error|Error|fail|FAIL)' "$out" | cut -c1-400 | tail -n 40 >&2 || true
fi
rm -f "$out"
exit $status
