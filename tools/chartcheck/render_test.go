package chartcheck

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/util/validation"
)

// valuesSets are the ways the chart is installed: each is rendered, linted, decoded and
// validated. "default" is values.yaml alone.
var valuesSets = map[string][]string{
	"default": nil,
	"dev":     {"values-dev.yaml"},
	"staging": {"values-staging.yaml"},
	// Every optional object on at once, with an external broker: no template goes unrendered.
	"all-optional": {"values-staging.yaml", filepath.Join(RepoRoot(), "tools", "chartcheck", "testdata", "values-all-optional.yaml")},
	// Email on and throwaway job kinds: every invariant must hold for kinds it does not know.
	"extra-kind": {filepath.Join(RepoRoot(), "tools", "chartcheck", "testdata", "values-extra-kind.yaml")},
}

var renderCache sync.Map // name → renderResult

type renderResult struct {
	r   Rendered
	err error
}

// renderSet renders one of valuesSets once per test binary.
func renderSet(t *testing.T, name string) Rendered {
	t.Helper()
	if v, ok := renderCache.Load(name); ok {
		res := v.(renderResult)
		if res.err != nil {
			t.Fatalf("render %s: %v", name, res.err)
		}
		return res.r
	}
	r, err := Render(valuesSets[name], nil)
	renderCache.Store(name, renderResult{r, err})
	if err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return r
}

// TestHelmLintStrict is `helm lint --strict --kube-version 1.31` for every values set:
// warnings fail too.
func TestHelmLintStrict(t *testing.T) {
	t.Parallel()
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range valuesSets {
		t.Run(name, func(t *testing.T) {
			vals, err := LoadValues(files, nil)
			if err != nil {
				t.Fatal(err)
			}
			linter := lint.AllWithKubeVersion(ChartDir(), vals, Namespace, kv)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("%s", m)
				} else {
					t.Logf("%s", m)
				}
			}
		})
	}
}

// TestRenderedObjectsDecodeStrictly decodes every object of every values set into its real Go
// type with unknown fields as errors, checks names and labels the way the API server does,
// and validates custom resources against the CRDs shipped in the operators' modules.
func TestRenderedObjectsDecodeStrictly(t *testing.T) {
	t.Parallel()
	crds, err := LoadCRDs()
	if err != nil {
		t.Fatal(err)
	}
	for name := range valuesSets {
		t.Run(name, func(t *testing.T) {
			r := renderSet(t, name)
			t.Logf("%s: %d objects: %s", name, len(r.Objects), strings.Join(r.Kinds(), ", "))
			seen := map[string]bool{}
			for _, o := range r.Objects {
				if seen[o.ID()] {
					t.Errorf("%s rendered twice", o.ID())
				}
				seen[o.ID()] = true
				if _, err := Decode(o); err != nil {
					t.Error(err)
					continue
				}
				for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
					t.Errorf("%s: name: %s", o.ID(), msg)
				}
				if o.Kind == "Service" {
					for _, msg := range validation.IsDNS1035Label(o.Name) {
						t.Errorf("%s: Service name: %s", o.ID(), msg)
					}
				}
				checkLabels(t, o)
				group := o.APIVersion
				if !strings.Contains(group, "/") {
					continue // core
				}
				if crd, ok := crds[o.APIVersion+"/"+o.Kind]; ok {
					for _, e := range crd.Validate(o.Map) {
						t.Errorf("%s from %s: against CRD %s: %v", o.ID(), o.Source, crd.Source, e)
					}
				} else if isCustom(o.APIVersion) {
					t.Logf("%s: no CRD YAML in a module for %s (strictly decoded into the Go type only)", o.ID(), o.APIVersion)
				}
			}
		})
	}
}

func isCustom(apiVersion string) bool {
	g, _, _ := strings.Cut(apiVersion, "/")
	return strings.Contains(g, ".") && !strings.HasSuffix(g, ".k8s.io")
}

func checkLabels(t *testing.T, o Object) {
	t.Helper()
	md, _ := o.Map["metadata"].(map[string]any)
	labels, _ := md["labels"].(map[string]any)
	for k, v := range labels {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", o.ID(), k, msg)
		}
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s: label %q is %T, not a string", o.ID(), k, v)
			continue
		}
		for _, msg := range validation.IsValidLabelValue(s) {
			t.Errorf("%s: label %q=%q: %s", o.ID(), k, s, msg)
		}
	}
	for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
		if _, ok := labels[k]; !ok {
			t.Errorf("%s: missing label %s", o.ID(), k)
		}
	}
}

// TestRenderedKinds writes the kinds per values set to the test log (go test -v shows them)
// and pins the core of what each set must render.
func TestRenderedKinds(t *testing.T) {
	t.Parallel()
	must := map[string][]string{
		"default":      {"Deployment×4", "ScaledObject×3", "TriggerAuthentication×1", "RabbitmqCluster×1", "Job (hook pre-install,pre-upgrade)×1", "Pod (hook test)×1", "NetworkPolicy×4", "PodDisruptionBudget×1"},
		"dev":          {"Deployment×7", "ScaledObject×4", "RabbitmqCluster×1", "NetworkPolicy×7"},
		"staging":      {"Ingress×1", "HorizontalPodAutoscaler×1", "ServiceMonitor×3", "PrometheusRule×1", "RabbitmqCluster×1"},
		"all-optional": {"Ingress×1", "HorizontalPodAutoscaler×1", "ServiceMonitor×2", "PrometheusRule×1", "Deployment×6", "ScaledObject×4", "NetworkPolicy×6"},
		"extra-kind":   {"Deployment×7", "ScaledObject×5", "TriggerAuthentication×1", "NetworkPolicy×7", "Secret×1", "PrometheusRule×1", "ServiceMonitor×3"},
	}
	for name := range valuesSets {
		kinds := renderSet(t, name).Kinds()
		fmt.Printf("chartcheck: %-13s %s\n", name+":", strings.Join(kinds, ", "))
		for _, k := range must[name] {
			found := false
			for _, got := range kinds {
				found = found || got == k
			}
			if !found {
				t.Errorf("%s: want %s among %v", name, k, kinds)
			}
		}
	}
}
