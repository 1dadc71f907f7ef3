package fakeopenai

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	type step struct {
		at     time.Duration // after t0
		tokens int
		refuse string // "": admitted; else the limit's kind
		header map[string]string
	}
	for _, tt := range []struct {
		name     string
		rpm, tpm int
		steps    []step
	}{
		{name: "requests: a full bucket, then one a second", rpm: 60, tpm: 1_000_000, steps: []step{
			{at: 0, header: map[string]string{"X-Ratelimit-Remaining-Requests": "59", "X-Ratelimit-Reset-Requests": "1s", "X-Ratelimit-Limit-Requests": "60"}},
		}},
		{name: "requests over the limit are refused with the wait until one refills", rpm: 2, tpm: 1_000_000, steps: []step{
			{at: 0}, {at: 0},
			{at: 10 * time.Second, refuse: "requests", header: map[string]string{"Retry-After": "20", "Retry-After-Ms": "20000", "X-Ratelimit-Remaining-Requests": "0"}},
			{at: 30 * time.Second, header: map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "1m0s"}},
		}},
		{name: "tokens are counted at arrival; a refused request is not", rpm: 100, tpm: 6000, steps: []step{
			{at: 0, tokens: 5000, header: map[string]string{"X-Ratelimit-Remaining-Tokens": "1000", "X-Ratelimit-Reset-Tokens": "50s"}},
			{at: 0, tokens: 2000, refuse: "tokens", header: map[string]string{"Retry-After": "10", "Retry-After-Ms": "10000", "X-Ratelimit-Remaining-Requests": "99"}},
			{at: 10 * time.Second, tokens: 2000, header: map[string]string{"X-Ratelimit-Remaining-Tokens": "0"}},
		}},
		{name: "no limit set: headers of a nominal budget, never a refusal", steps: []step{
			{at: 0, tokens: 1_500_000}, {at: 0, tokens: 1_500_000, header: map[string]string{"X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Limit-Tokens": "2000000"}},
			{at: time.Second, tokens: 1_500_000},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newRateLimiter(tt.rpm, tt.tpm)
			for i, s := range tt.steps {
				h, refusal := l.admit(t0.Add(s.at), s.tokens, false)
				switch {
				case s.refuse == "" && refusal != nil:
					t.Fatalf("step %d refused: %s", i, refusal.message)
				case s.refuse != "" && (refusal == nil || refusal.kind != s.refuse):
					t.Fatalf("step %d: %+v, want a refusal of %s", i, refusal, s.refuse)
				}
				for k, want := range s.header {
					if got := h.Get(k); got != want {
						t.Errorf("step %d: %s = %q, want %q", i, k, got, want)
					}
				}
			}
		})
	}
}
