package chartcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestDevManifests: k8s/dev decodes strictly; its Secret has every key values-dev.yaml
// references; the dev NetworkPolicy rules select its PostgreSQL and Jaeger pods; and the
// DATABASE_URL and OTLP endpoint of the dev setup name its Services.
func TestDevManifests(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(RepoRoot(), "k8s", "dev", "*.yaml"))
	podLabels := map[string]labels.Set{}
	services := map[string]bool{}
	secrets := map[string]map[string]string{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			o, err := parseObject(filepath.Base(f), []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if o == nil {
				continue
			}
			if _, err := Decode(*o); err != nil {
				t.Error(err)
				continue
			}
			switch o.Kind {
			case "Deployment":
				d, _ := As[appsv1.Deployment](*o)
				podLabels[d.Name] = d.Spec.Template.Labels
			case "Service":
				services[o.Name] = true
			case "Secret":
				s, _ := As[corev1.Secret](*o)
				secrets[s.Name] = s.StringData
			}
		}
	}
	r := renderSet(t, "dev")
	// The chart's own Secret (the SMTP password given as a value) counts too.
	for _, o := range r.Find("Secret", "") {
		s, err := As[corev1.Secret](o)
		if err != nil {
			t.Fatal(err)
		}
		secrets[s.Name] = s.StringData
	}
	for _, o := range r.Objects {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		for _, c := range specOf(t, o).Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if strings.HasSuffix(ref.Name, "-default-user") {
					continue // the operator's
				}
				if _, ok := secrets[ref.Name][ref.Key]; !ok {
					t.Errorf("dev: %s needs %s/%s, which k8s/dev does not provide", o.ID(), ref.Name, ref.Key)
				}
			}
		}
	}
	if u := secrets["careerops-dev"]["DATABASE_URL"]; !strings.Contains(u, "@postgres:5432/") || !services["postgres"] {
		t.Errorf("dev DATABASE_URL %q does not name the postgres Service", u)
	}
	for _, w := range workersOf(t, "dev", r) {
		if len(w.policies) == 0 {
			t.Errorf("dev: no NetworkPolicy selects %s", w.deployment.Name)
			continue
		}
		np := w.policies[0]
		for _, dep := range []string{"postgres", "jaeger"} {
			allowed := false
			for _, rule := range np.Spec.Egress {
				for _, peer := range rule.To {
					if peer.PodSelector != nil && peer.NamespaceSelector == nil && len(peer.PodSelector.MatchLabels) > 0 &&
						labels.SelectorFromSet(peer.PodSelector.MatchLabels).Matches(podLabels[dep]) {
						allowed = true
					}
				}
			}
			if !allowed {
				t.Errorf("dev: the NetworkPolicy of %s does not let it reach the %s pods of k8s/dev", w.deployment.Name, dep)
			}
		}
	}
}
