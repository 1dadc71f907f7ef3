package chaos

import (
	"testing"
	"time"
)

func TestPaceOf(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	calls := func(starts ...time.Duration) []LLMCall {
		out := make([]LLMCall, len(starts))
		for i, s := range starts {
			out[i].Start = t0.Add(s)
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		calls []LLMCall
		want  Pace
	}{
		{"none", nil, Pace{}},
		{"a burst only", calls(0, 100*time.Millisecond, time.Second), Pace{Burst: 3}},
		{"a burst, then one a second", calls(0, 0, 0, 2*time.Second, 3*time.Second, 4*time.Second, 5*time.Second), Pace{Burst: 3, SteadyRPM: 60}},
		{"one every two seconds", calls(0, 2*time.Second, 4*time.Second, 6*time.Second), Pace{Burst: 1, SteadyRPM: 30}},
	} {
		if got := PaceOf(tt.calls); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
