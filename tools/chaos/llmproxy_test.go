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
		{"a burst within the bucket", calls(0, 100*time.Millisecond, time.Second), Pace{Burst: 3}},
		{"the bucket, then one per refill", calls(0, 0, 0, 20*time.Second, 40*time.Second, 60*time.Second, 80*time.Second),
			Pace{Burst: 3, SteadyRPM: 3}},
		{"ahead of the bucket", calls(0, 0, 0, 0, 0), Pace{Burst: 5, Excess: 2}},
		{"a slow first fill, then what refilled at once", calls(0, 20*time.Second, 40*time.Second, time.Minute, time.Minute, time.Minute),
			Pace{Burst: 1, SteadyRPM: 3}},
		{"one more than that", calls(0, 20*time.Second, 40*time.Second, time.Minute, time.Minute, time.Minute, time.Minute),
			Pace{Burst: 1, Excess: 1, SteadyRPM: 4}},
	} {
		if got := PaceOf(tt.calls, 3); got != tt.want { // 3 a minute: one refills every 20 s
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
