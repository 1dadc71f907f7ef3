package chartcheck

import (
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	_ "github.com/moby/buildkit/frontend/dockerfile/instructions"
	_ "github.com/moby/buildkit/frontend/dockerfile/parser"
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	_ "helm.sh/helm/v3/pkg/action"
	_ "helm.sh/helm/v3/pkg/chart/loader"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
)
