package chartcheck

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScaleInViolations(t *testing.T) {
	t.Parallel()
	rule := ScaleInRule{Stabilization: 30 * time.Second, PodsPerPeriod: 1, Period: time.Minute, Tolerance: 2 * time.Second}
	s := time.Second
	cases := []struct {
		name    string
		changes []ReplicaChange
		want    []string // substrings, one per violation
	}{
		{"none", nil, nil},
		{"one pod a minute after the window", []ReplicaChange{{45 * s, 3, 2}, {106 * s, 2, 1}}, nil},
		{"within the tolerance", []ReplicaChange{{29 * s, 3, 2}, {88 * s, 2, 1}}, nil},
		{"before the window", []ReplicaChange{{10 * s, 3, 2}}, []string{"stabilization window"}},
		// What the issue saw: the HPA had added the pods less than a minute before.
		{"two pods in one step", []ReplicaChange{{40 * s, 3, 1}}, []string{"2 pods removed"}},
		{"two steps within a minute", []ReplicaChange{{40 * s, 3, 2}, {70 * s, 2, 1}}, []string{"2 pods removed"}},
		{"a scale-up", []ReplicaChange{{40 * s, 2, 3}}, []string{"not a scale-in"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ScaleInViolations(rule, tc.changes)
			if len(got) != len(tc.want) {
				t.Fatalf("violations %q, want %d like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %q lacks %q", got[i], w)
				}
			}
		})
	}
	if s := (ReplicaChange{At: 1500 * time.Millisecond, From: 0, To: 1}).String(); !slices.Contains([]string{"+2s 0→1"}, s) {
		t.Errorf("String() = %q", s)
	}
}
