#!/usr/bin/env bash
# Stops the control plane scripts/cluster/up.sh started and removes its state directory.
#
#   scripts/cluster/down.sh DIR       (DIR: what up.sh printed; or $CLUSTER_STATE)
set -euo pipefail

state=${1:-${CLUSTER_STATE:-}}
if [[ -z $state || ! -d $state/pids ]]; then
  echo "usage: $0 STATE_DIR (the directory scripts/cluster/up.sh printed)" >&2
  exit 2
fi

# The controllers first, etcd last, so none of them logs a storm of connection errors.
order=(keda-adapter keda-operator rabbitmq-operator kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
for name in "${order[@]}"; do
  f=$state/pids/$name
  [[ -f $f ]] || continue
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || continue
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
done
rm -rf "$state"
echo "cluster-down: stopped and removed $state" >&2
