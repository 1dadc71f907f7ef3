#!/usr/bin/env sh
# Installs what the chart needs in a dev cluster and waits for it: the RabbitMQ cluster
# operator (its release manifest) and KEDA (its official Helm chart), by reference and pinned.
# skaffold (deploy hook) and Tilt (local_resource) run it; idempotent. Refuses a context that
# is not a kind cluster unless CAREEROPS_DEPS_ANY_CONTEXT=1.
set -eu
RABBITMQ_OPERATOR_VERSION=v2.16.0
KEDA_CHART_VERSION=2.21.0

ctx=$(kubectl config current-context)
case "$ctx" in
kind-*) ;;
*) [ "${CAREEROPS_DEPS_ANY_CONTEXT:-0}" = 1 ] || { echo "install-deps: context $ctx is not kind; set CAREEROPS_DEPS_ANY_CONTEXT=1 to install anyway" >&2; exit 1; } ;;
esac

kubectl apply -f "https://github.com/rabbitmq/cluster-operator/releases/download/$RABBITMQ_OPERATOR_VERSION/cluster-operator.yml"
helm repo add kedacore https://kedacore.github.io/charts --force-update >/dev/null
helm upgrade --install keda kedacore/keda --version "$KEDA_CHART_VERSION" -n keda --create-namespace --wait
kubectl -n rabbitmq-system rollout status deploy/rabbitmq-cluster-operator --timeout=300s
kubectl wait --for=condition=Established --timeout=120s crd/rabbitmqclusters.rabbitmq.com crd/scaledobjects.keda.sh crd/triggerauthentications.keda.sh
