package chartcheck

import (
	"fmt"
	"reflect"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	rabbitmqv1beta1 "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// types maps "apiVersion/Kind" to the Go type the object must decode into. A kind the chart
// renders that is missing here fails the checks: every object is decoded.
var goTypes = map[string]reflect.Type{
	"v1/ServiceAccount":                       reflect.TypeFor[corev1.ServiceAccount](),
	"v1/Service":                              reflect.TypeFor[corev1.Service](),
	"v1/Pod":                                  reflect.TypeFor[corev1.Pod](),
	"v1/Secret":                               reflect.TypeFor[corev1.Secret](),
	"v1/Namespace":                            reflect.TypeFor[corev1.Namespace](),
	"v1/ConfigMap":                            reflect.TypeFor[corev1.ConfigMap](),
	"apps/v1/Deployment":                      reflect.TypeFor[appsv1.Deployment](),
	"batch/v1/Job":                            reflect.TypeFor[batchv1.Job](),
	"policy/v1/PodDisruptionBudget":           reflect.TypeFor[policyv1.PodDisruptionBudget](),
	"networking.k8s.io/v1/NetworkPolicy":      reflect.TypeFor[networkingv1.NetworkPolicy](),
	"networking.k8s.io/v1/Ingress":            reflect.TypeFor[networkingv1.Ingress](),
	"autoscaling/v2/HorizontalPodAutoscaler":  reflect.TypeFor[autoscalingv2.HorizontalPodAutoscaler](),
	"keda.sh/v1alpha1/ScaledObject":           reflect.TypeFor[kedav1alpha1.ScaledObject](),
	"keda.sh/v1alpha1/TriggerAuthentication":  reflect.TypeFor[kedav1alpha1.TriggerAuthentication](),
	"rabbitmq.com/v1beta1/RabbitmqCluster":    reflect.TypeFor[rabbitmqv1beta1.RabbitmqCluster](),
	"monitoring.coreos.com/v1/ServiceMonitor": reflect.TypeFor[monitoringv1.ServiceMonitor](),
	"monitoring.coreos.com/v1/PrometheusRule": reflect.TypeFor[monitoringv1.PrometheusRule](),
}

// Decode decodes o strictly into its Go type: an unknown or duplicate field is an error, and
// so is a value of the wrong type (a string where an int belongs, a bad quantity). It returns
// a pointer to the typed object.
func Decode(o Object) (any, error) {
	t, ok := goTypes[o.APIVersion+"/"+o.Kind]
	if !ok {
		return nil, fmt.Errorf("%s (%s): %w", o.ID(), o.APIVersion, ErrUnknownKind)
	}
	v := reflect.New(t)
	if err := yaml.UnmarshalStrict(o.YAML, v.Interface()); err != nil {
		return nil, fmt.Errorf("%s from %s: strict decoding into %s: %w", o.ID(), o.Source, t, err)
	}
	return v.Interface(), nil
}

// As decodes o strictly into *T.
func As[T any](o Object) (*T, error) {
	v, err := Decode(o)
	if err != nil {
		return nil, err
	}
	t, ok := v.(*T)
	if !ok {
		return nil, fmt.Errorf("%s decodes into %T, not %T", o.ID(), v, t)
	}
	return t, nil
}
