package chartcheck

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestCRDValidationCatches proves the CRD validation is not a no-op: rendered custom resources
// with mistakes the Go types accept (they have no minimums, no CEL rules and no required
// markers at decode time) fail against the CRDs shipped in the operators' modules.
func TestCRDValidationCatches(t *testing.T) {
	t.Parallel()
	crds, err := LoadCRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"keda.sh/v1alpha1/ScaledObject", "keda.sh/v1alpha1/TriggerAuthentication", "rabbitmq.com/v1beta1/RabbitmqCluster"} {
		if crds[k] == nil {
			t.Fatalf("no CRD loaded for %s", k)
		}
	}
	r := renderSet(t, "default")
	cases := []struct {
		name, kind string
		mutate     func(m map[string]any)
		want       string
	}{
		{"min above max (CEL rule)", "ScaledObject", func(m map[string]any) {
			spec := m["spec"].(map[string]any)
			spec["minReplicaCount"], spec["maxReplicaCount"] = 5, 2
		}, "minReplicaCount must be less than or equal to maxReplicaCount"},
		{"trigger without type", "ScaledObject", func(m map[string]any) {
			tr := m["spec"].(map[string]any)["triggers"].([]any)[0].(map[string]any)
			delete(tr, "type")
		}, "type"},
		{"unknown field", "ScaledObject", func(m map[string]any) {
			m["spec"].(map[string]any)["pollingIntervall"] = 5
		}, "pollingIntervall"},
		{"negative replicas", "RabbitmqCluster", func(m map[string]any) {
			m["spec"].(map[string]any)["replicas"] = -1
		}, "replicas"},
		{"secretTargetRef without key", "TriggerAuthentication", func(m map[string]any) {
			ref := m["spec"].(map[string]any)["secretTargetRef"].([]any)[0].(map[string]any)
			delete(ref, "key")
		}, "key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs := r.Find(c.kind, "")
			if len(objs) == 0 {
				t.Fatalf("no %s rendered", c.kind)
			}
			o := objs[0]
			// A deep copy of the rendered object.
			var m map[string]any
			if err := yaml.Unmarshal(o.YAML, &m); err != nil {
				t.Fatal(err)
			}
			crd := crds[o.APIVersion+"/"+o.Kind]
			if errs := crd.Validate(m); len(errs) != 0 {
				t.Fatalf("the rendered %s is invalid already: %v", o.ID(), errs)
			}
			c.mutate(m)
			errs := crd.Validate(m)
			if len(errs) == 0 {
				t.Fatalf("%s: no error from the CRD", c.name)
			}
			if !strings.Contains(errs.ToAggregate().Error(), c.want) {
				t.Fatalf("errors %v do not mention %q", errs, c.want)
			}
		})
	}
}
