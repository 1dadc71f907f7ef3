package chartcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// CRDModules are the Go modules whose config/crd/bases hold the CRDs the chart's custom
// resources are validated against: the same modules (and versions, from go.mod) whose Go
// types they are decoded into. No schema is written by hand here.
var CRDModules = []string{
	"github.com/kedacore/keda/v2",
	"github.com/rabbitmq/cluster-operator/v2",
}

// CRDVersion validates custom resources of one served version of a CRD the way the API server
// does on create: prune unknown fields (reported as errors here, where the server would drop
// them silently), apply the schema's defaults, validate against the OpenAPI schema, then run
// the x-kubernetes-validations CEL rules.
type CRDVersion struct {
	// Source is the CRD file (module@version/path).
	Source     string
	structural *schema.Structural
	validator  validation.SchemaValidator
	cel        *cel.Validator
}

// LoadCRDs reads every CRD in the CRD modules' config/crd/bases directories and returns one
// validator per "group/version/Kind".
func LoadCRDs() (map[string]*CRDVersion, error) {
	dirs, err := moduleDirs(CRDModules)
	if err != nil {
		return nil, err
	}
	out := map[string]*CRDVersion{}
	for mod, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "bases", "*.yaml"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no CRDs in %s/config/crd/bases", mod, dir)
		}
		for _, f := range files {
			if err := loadCRDFile(out, mod, dir, f); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func loadCRDFile(out map[string]*CRDVersion, mod, dir, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(dir, file)
	source := mod + "@" + filepath.Base(dir)[strings.LastIndex(filepath.Base(dir), "@")+1:] + "/" + filepath.ToSlash(rel)
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		var internal apiextensions.CustomResourceValidation
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v.Schema, &internal, nil); err != nil {
			return fmt.Errorf("%s %s: converting the schema: %w", source, v.Name, err)
		}
		s, err := schema.NewStructural(internal.OpenAPIV3Schema)
		if err != nil {
			return fmt.Errorf("%s %s: not a structural schema: %w", source, v.Name, err)
		}
		sv, _, err := validation.NewSchemaValidator(internal.OpenAPIV3Schema)
		if err != nil {
			return fmt.Errorf("%s %s: %w", source, v.Name, err)
		}
		key := crd.Spec.Group + "/" + v.Name + "/" + crd.Spec.Names.Kind
		out[key] = &CRDVersion{
			Source:     source,
			structural: s,
			validator:  sv,
			cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
		}
	}
	return nil
}

// Validate checks obj (generic JSON data of one custom resource) as the API server would on
// create, and returns every problem.
func (c *CRDVersion) Validate(obj map[string]any) field.ErrorList {
	// Work on a JSON round-tripped copy decoded as the API server decodes: integral numbers
	// as int64 (CEL rules compare ints), others as float64.
	raw, err := json.Marshal(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	var u map[string]any
	if err := utiljson.Unmarshal(raw, &u); err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	u = runtime.DeepCopyJSON(u)

	var errs field.ErrorList
	opts := schema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	unknown := pruning.PruneWithOptions(u, c.structural, true, opts)
	sort.Strings(unknown)
	for _, p := range unknown {
		errs = append(errs, field.Invalid(field.NewPath(p), nil, "unknown field: the API server would prune it (not in the CRD schema)"))
	}
	defaulting.Default(u, c.structural)
	errs = append(errs, validation.ValidateCustomResource(nil, u, c.validator)...)
	celErrs, _ := c.cel.Validate(context.Background(), nil, c.structural, u, nil, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	return errs
}

// moduleDirs asks the go command where the modules live in the module cache (downloading
// them if needed), at the versions this module's go.mod requires.
func moduleDirs(mods []string) (map[string]string, error) {
	args := append([]string{"list", "-m", "-json"}, mods...)
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join(RepoRoot(), "tools", "chartcheck")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m -json: %w: %s", err, stderr.String())
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Version, Dir string }
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		if m.Dir == "" {
			// Not in the module cache yet: download it.
			dl := exec.Command("go", "mod", "download", "-json", m.Path+"@"+m.Version)
			dl.Dir = cmd.Dir
			dout, err := dl.Output()
			if err != nil {
				return nil, fmt.Errorf("go mod download %s@%s: %w", m.Path, m.Version, err)
			}
			var d struct{ Dir string }
			if err := json.Unmarshal(dout, &d); err != nil {
				return nil, err
			}
			m.Dir = d.Dir
		}
		dirs[m.Path] = m.Dir
	}
	return dirs, nil
}
