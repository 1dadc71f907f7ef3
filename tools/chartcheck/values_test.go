package chartcheck

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestSchemaRejectsBadValues: each file in testdata/bad-values is refused by helm (through
// values.schema.json, or the chart's own checks for what a schema cannot express) with an
// error naming what is wrong (the file's "# want:" line).
func TestSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(RepoRoot(), "tools", "chartcheck", "testdata", "bad-values", "*.yaml"))
	if len(files) < 5 {
		t.Fatalf("only %d bad values files", len(files))
	}
	schemaRejected := 0
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			want := wantLine(t, f)
			_, err := Render([]string{f}, nil)
			if err == nil {
				t.Fatalf("rendered without error; want one mentioning %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not mention %q", err, want)
			}
			if strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				schemaRejected++
			}
		})
	}
	t.Cleanup(func() {
		if schemaRejected < 5 {
			t.Errorf("values.schema.json itself rejected only %d files, want at least 5", schemaRejected)
		}
	})
}

func wantLine(t *testing.T, file string) string {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			return strings.TrimSpace(w)
		}
	}
	t.Fatalf("%s: no \"# want:\" line", file)
	return ""
}

var update = flag.Bool("update", false, "rewrite the values table in docs/deploy.md from values.yaml")

// valueDoc is one documented value of values.yaml.
type valueDoc struct {
	path, def, doc string
}

// valuesDocs walks values.yaml: every key with a comment of its own is a row (its comment,
// joined, is the description); maps without one are walked into. Every scalar must be covered
// by a row, and every comment must start with the key's name.
func valuesDocs(t *testing.T) []valueDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ChartDir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	var out []valueDoc
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := strings.TrimPrefix(prefix+"."+k.Value, ".")
			comment := lastParagraph(k.HeadComment)
			if comment == "" {
				if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
					walk(path, v)
					continue
				}
				t.Errorf("values.yaml: %s has no comment", path)
				continue
			}
			if first, _, _ := strings.Cut(comment, " "); first != k.Value {
				t.Errorf("values.yaml: the comment of %s must start with %q (name-first), not %q", path, k.Value, first)
			}
			out = append(out, valueDoc{path: path, def: defaultOf(v), doc: comment})
		}
	}
	walk("", root.Content[0])
	return out
}

// lastParagraph is the comment block right above a key (section comments above a blank line
// are not its documentation), without the "# ".
func lastParagraph(c string) string {
	paras := strings.Split(strings.TrimSpace(c), "\n\n")
	var lines []string
	for l := range strings.SplitSeq(paras[len(paras)-1], "\n") {
		lines = append(lines, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#")))
	}
	return strings.TrimSpace(strings.Join(lines, " "))
}

func defaultOf(v *yaml.Node) string {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Value == "":
		return `""`
	case v.Kind == yaml.ScalarNode:
		return v.Value
	case len(v.Content) == 0 && v.Kind == yaml.SequenceNode:
		return "[]"
	case len(v.Content) == 0:
		return "{}"
	}
	b, _ := yaml.Marshal(v)
	s := strings.TrimSpace(string(b))
	if len(s) > 60 || strings.Contains(s, "\n") {
		return "see values.yaml"
	}
	return s
}

const (
	tableBegin = "<!-- values-table:begin (generated from charts/careerops/values.yaml by: cd tools/chartcheck && go test -run TestValuesTableInDocs -update) -->"
	tableEnd   = "<!-- values-table:end -->"
)

// TestValuesTableInDocs: the values table in docs/deploy.md is the one values.yaml's comments
// give (go test -run TestValuesTableInDocs -update rewrites it).
func TestValuesTableInDocs(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("| value | default | meaning |\n| --- | --- | --- |\n")
	for _, d := range valuesDocs(t) {
		def := strings.ReplaceAll(d.def, "|", `\|`)
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", d.path, def, strings.ReplaceAll(d.doc, "|", `\|`))
	}
	table := b.String()
	docPath := filepath.Join(RepoRoot(), "docs", "deploy.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), tableBegin)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("docs/deploy.md lacks the markers %q and %q", tableBegin, tableEnd)
	}
	want := before + tableBegin + "\n" + table + tableEnd + after
	if want == string(doc) {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("docs/deploy.md: values table rewritten")
		return
	}
	t.Errorf("the values table in docs/deploy.md is out of date with values.yaml; run: cd tools/chartcheck && go test -run TestValuesTableInDocs -update")
}
