package kinds

import (
	"slices"
	"testing"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/kind"
)

// Every kind is declared validly, and All, job.Kinds (the queues every program declares) and
// Select agree.
func TestKindsAreDeclaredOnceAndSelectable(t *testing.T) {
	t.Parallel()
	all := All(Deps{})
	var names []string
	for _, k := range all {
		if err := k.Validate(); err != nil {
			t.Error(err)
		}
		names = append(names, k.Name)
	}
	if !slices.Equal(names, job.Kinds()) {
		t.Fatalf("All declares %v, job.Kinds names %v", names, job.Kinds())
	}
	tests := []struct {
		pick    []string
		want    []string
		wantErr bool
	}{
		{nil, job.Kinds(), false},
		{[]string{job.QueueGenerate}, []string{job.QueueGenerate}, false},
		{[]string{"nope.kind"}, nil, true},
	}
	for _, tt := range tests {
		got, err := Select(all, tt.pick)
		if (err != nil) != tt.wantErr {
			t.Fatalf("Select(%v) error = %v", tt.pick, err)
		}
		if gotNames := nameList(got); !tt.wantErr && !slices.Equal(gotNames, tt.want) {
			t.Fatalf("Select(%v) = %v, want %v", tt.pick, gotNames, tt.want)
		}
	}
	if _, err := StoreSpec("nope.kind"); err == nil {
		t.Fatal("StoreSpec of an unknown kind")
	}
}

func nameList(ks []kind.Kind) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}
