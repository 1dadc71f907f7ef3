package chartcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestDevloopOutputs checks what `make devloop-check` got from the real tools (it sets
// DEVLOOP_OUT): `skaffold render` of both profiles decodes strictly into the Go types and
// holds the chart with the image skaffold would build; `tilt alpha tiltfile-result` knows
// the image build and the chart's workloads. Skipped in a plain `go test` run.
func TestDevloopOutputs(t *testing.T) {
	dir := os.Getenv("DEVLOOP_OUT")
	if dir == "" {
		t.Skip("DEVLOOP_OUT not set: run make devloop-check")
	}
	for _, profile := range []string{"dev", "staging"} {
		data, err := os.ReadFile(filepath.Join(dir, "skaffold-"+profile+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var deployments []*appsv1.Deployment
		for _, doc := range strings.Split(string(data), "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			o, err := parseObject("skaffold render -p "+profile, []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if o == nil {
				continue
			}
			if _, err := Decode(*o); err != nil {
				t.Errorf("%s: %v", profile, err)
			}
			if o.Kind == "Deployment" {
				d, _ := As[appsv1.Deployment](*o)
				deployments = append(deployments, d)
			}
		}
		wantRepo := "careerops:"
		if profile == "staging" {
			wantRepo = "registry.example.com/careerops/careerops:"
		}
		found := 0
		for _, d := range deployments {
			if !strings.HasPrefix(d.Name, "careerops-") || d.Name == "careerops-mailpit" { // Mailpit runs its own image
				continue
			}
			found++
			img := d.Spec.Template.Spec.Containers[0].Image
			if !strings.HasPrefix(img, wantRepo) {
				t.Errorf("%s: %s runs %s, want the image skaffold builds (%s...)", profile, d.Name, img, wantRepo)
			}
		}
		if found < 2 {
			t.Errorf("%s: skaffold rendered %d careerops Deployments", profile, found)
		}
		if profile == "staging" && len(deployments) != found {
			t.Errorf("staging: skaffold renders %d Deployments besides the chart's (k8s/dev belongs to dev only)", len(deployments)-found)
		}
		t.Logf("skaffold render -p %s: %d bytes, %d Deployments", profile, len(data), len(deployments))
	}

	data, err := os.ReadFile(filepath.Join(dir, "tilt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var result map[string]any
	if err := json.Unmarshal(data, &result); err != nil {
		t.Fatalf("tilt alpha tiltfile-result: %v", err)
	}
	text := string(data)
	for _, want := range []string{"careerops-api", "careerops-worker-cover-letter", "careerops-migrations", "cluster-deps", "rabbitmq", `"careerops"`} {
		if !strings.Contains(text, want) {
			t.Errorf("tiltfile-result lacks %s", want)
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range result {
			if !yield(k) {
				return
			}
		}
	})
	t.Logf("tiltfile-result: %d bytes, keys %v", len(data), keys)
}
