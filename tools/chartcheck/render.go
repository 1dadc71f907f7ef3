// Package chartcheck checks the deployment files of the repository without a cluster: the
// Helm chart in charts/careerops (rendered with the Helm SDK, decoded strictly into the real
// Kubernetes, KEDA, RabbitMQ-operator and Prometheus-operator Go types, custom resources
// validated against the CRDs those projects ship), docker-compose.yml (compose-go) and the
// Dockerfile (BuildKit's parser). It is a module of its own so the product's go.mod stays lean.
//
//	make chart-check        (or: cd tools/chartcheck && go test ./...)
package chartcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the Kubernetes version the chart is rendered for (helm --kube-version).
const KubeVersion = "v1.31.0"

// Namespace is the namespace charts are rendered into.
const Namespace = "careerops"

// RepoRoot is the repository's root directory (two levels above this package).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ChartDir is charts/careerops.
func ChartDir() string { return filepath.Join(RepoRoot(), "charts", "careerops") }

// Object is one rendered Kubernetes object.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	// Hook is the helm.sh/hook annotation ("" for a plain release object).
	Hook string
	// Source is the template it came from.
	Source string
	// YAML is the object as rendered.
	YAML []byte
	// Map is the object as generic JSON data.
	Map map[string]any
}

// ID is "Kind/name" for messages.
func (o Object) ID() string { return o.Kind + "/" + o.Name }

// Rendered is a rendered chart.
type Rendered struct {
	Objects []Object
	Notes   string
}

// Find returns the objects of kind whose name ends with suffix.
func (r Rendered) Find(kind, suffix string) []Object {
	var out []Object
	for _, o := range r.Objects {
		if o.Kind == kind && strings.HasSuffix(o.Name, suffix) {
			out = append(out, o)
		}
	}
	return out
}

// Kinds lists "Kind×count" of the rendered objects, sorted, hooks marked.
func (r Rendered) Kinds() []string {
	count := map[string]int{}
	for _, o := range r.Objects {
		k := o.Kind
		if o.Hook != "" {
			k += " (hook " + o.Hook + ")"
		}
		count[k]++
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(count)) {
		out = append(out, fmt.Sprintf("%s×%d", k, count[k]))
	}
	return out
}

// LoadValues reads values files (relative to the chart directory unless absolute) and merges
// them left to right, then overlays extra (may be nil), as helm -f a -f b --set ... does.
func LoadValues(files []string, extra map[string]any) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(ChartDir(), f)
		}
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, err
		}
		vals = mergeMaps(vals, v)
	}
	if extra != nil {
		vals = mergeMaps(vals, extra)
	}
	return vals, nil
}

// mergeMaps is Helm's CLI merge of values files: maps merge, everything else replaces.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	maps.Copy(out, a)
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Render renders the chart with the values files and extra values, as
// `helm template careerops charts/careerops -n careerops --kube-version 1.31 -f ...` does,
// including hooks and test pods, and the values.schema.json check.
func Render(files []string, extra map[string]any) (Rendered, error) {
	vals, err := LoadValues(files, extra)
	if err != nil {
		return Rendered{}, err
	}
	return RenderValues(vals)
}

// RenderValues renders the chart with already merged user values.
func RenderValues(vals map[string]any) (Rendered, error) {
	chrt, err := loader.Load(ChartDir())
	if err != nil {
		return Rendered{}, err
	}
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return Rendered{}, err
	}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = "careerops"
	install.Namespace = Namespace
	install.KubeVersion = kv
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return Rendered{}, err
	}
	var out Rendered
	out.Notes = rel.Info.Notes
	add := func(source, manifest string) error {
		for _, doc := range releaseutil.SplitManifests(manifest) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			o, err := parseObject(source, []byte(doc))
			if err != nil {
				return err
			}
			if o != nil {
				out.Objects = append(out.Objects, *o)
			}
		}
		return nil
	}
	// The manifest comes as "---\n# Source: path\n..." documents.
	for _, doc := range strings.Split(rel.Manifest, "\n---\n") {
		source := ""
		if i := strings.Index(doc, "# Source: "); i >= 0 {
			source = strings.TrimSpace(strings.SplitN(doc[i+len("# Source: "):], "\n", 2)[0])
		}
		if err := add(source, doc); err != nil {
			return Rendered{}, err
		}
	}
	for _, h := range rel.Hooks {
		if err := add(h.Path, h.Manifest); err != nil {
			return Rendered{}, err
		}
	}
	sort.SliceStable(out.Objects, func(i, j int) bool { return out.Objects[i].ID() < out.Objects[j].ID() })
	return out, nil
}

func parseObject(source string, doc []byte) (*Object, error) {
	doc = bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---"))
	var m map[string]any
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("%s: not YAML: %w", source, err)
	}
	if len(m) == 0 {
		return nil, nil // a document of only comments
	}
	o := &Object{Source: source, YAML: doc, Map: m}
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	md, _ := m["metadata"].(map[string]any)
	o.Name, _ = md["name"].(string)
	if ann, ok := md["annotations"].(map[string]any); ok {
		o.Hook, _ = ann["helm.sh/hook"].(string)
	}
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return nil, fmt.Errorf("%s: object without apiVersion, kind or metadata.name", source)
	}
	return o, nil
}

// ErrUnknownKind is returned by Decode for a kind this package has no Go type for.
var ErrUnknownKind = errors.New("no Go type registered for this apiVersion and kind")
