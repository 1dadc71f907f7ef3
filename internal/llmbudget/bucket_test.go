package llmbudget

import (
	"testing"
	"time"

	"github.com/careerops/jobs/internal/llm"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestReserve(t *testing.T) {
	t.Parallel()
	rpm60 := Limits{RequestsPerMinute: 60}
	tpm := Limits{TokensPerMinute: 6000} // 10 ms a token
	for _, tc := range []struct {
		name     string
		s        State
		lim      Limits
		tokens   int
		maxWait  time.Duration
		want     State
		wantWait time.Duration
		wantOK   bool
	}{
		{name: "an idle budget lets a call go at once", lim: rpm60, tokens: 500, maxWait: time.Second,
			want: State{RequestsAt: at(time.Second)}, wantOK: true},
		{name: "a bucket with room left (the headroom aside) lets it go at once", s: State{RequestsAt: at(58 * time.Second)}, lim: rpm60, maxWait: 0,
			want: State{RequestsAt: at(59 * time.Second)}, wantOK: true},
		{name: "a full bucket makes the next wait one interval", s: State{RequestsAt: at(59 * time.Second)}, lim: rpm60,
			maxWait: 5 * time.Second, want: State{RequestsAt: at(time.Minute)}, wantWait: time.Second, wantOK: true},
		{name: "waiters queue behind each other", s: State{RequestsAt: at(62 * time.Second)}, lim: rpm60,
			maxWait: 5 * time.Second, want: State{RequestsAt: at(63 * time.Second)}, wantWait: 4 * time.Second, wantOK: true},
		{name: "a wait past the bound takes nothing", s: State{RequestsAt: at(70 * time.Second)}, lim: rpm60,
			maxWait: 5 * time.Second, want: State{RequestsAt: at(70 * time.Second)}, wantWait: 12 * time.Second},
		{name: "tokens are counted at their rate", s: State{TokensAt: at(54 * time.Second)}, lim: tpm, tokens: 1000, maxWait: time.Minute,
			want: State{TokensAt: at(64 * time.Second)}, wantWait: 5 * time.Second, wantOK: true},
		{name: "the slower of the two limits decides", s: State{RequestsAt: at(61 * time.Second), TokensAt: at(58 * time.Second)},
			lim: Limits{RequestsPerMinute: 60, TokensPerMinute: 6000}, tokens: 300, maxWait: time.Minute,
			want: State{RequestsAt: at(62 * time.Second), TokensAt: at(61 * time.Second)}, wantWait: 3 * time.Second, wantOK: true},
		{name: "a call bigger than the budget waits for a whole bucket only", lim: tpm, tokens: 1_000_000, maxWait: time.Minute,
			want: State{TokensAt: at(time.Minute)}, wantWait: headroom, wantOK: true},
		{name: "a pause holds every call", s: State{PausedUntil: at(3 * time.Second)}, lim: rpm60, maxWait: 5 * time.Second,
			want: State{RequestsAt: at(time.Second), PausedUntil: at(3 * time.Second)}, wantWait: 3 * time.Second, wantOK: true},
		{name: "a pause past the bound defers", s: State{PausedUntil: at(30 * time.Second)}, lim: rpm60, maxWait: 5 * time.Second,
			want: State{PausedUntil: at(30 * time.Second)}, wantWait: 30 * time.Second},
		{name: "an instant long past counts as an idle budget", s: State{RequestsAt: at(-time.Hour)}, lim: rpm60,
			want: State{RequestsAt: at(time.Second)}, wantOK: true},
		{name: "no limits: nothing is counted", s: State{RequestsAt: at(-time.Hour)}, tokens: 100,
			want: State{RequestsAt: at(-time.Hour)}, wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, wait, ok := reserve(tc.s, tc.lim, tc.tokens, t0, tc.maxWait)
			if !got.RequestsAt.Equal(tc.want.RequestsAt) || !got.TokensAt.Equal(tc.want.TokensAt) || !got.PausedUntil.Equal(tc.want.PausedUntil) {
				t.Errorf("state = %+v, want %+v", got, tc.want)
			}
			if wait != tc.wantWait || ok != tc.wantOK {
				t.Errorf("wait, ok = %v, %v; want %v, %v", wait, ok, tc.wantWait, tc.wantOK)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	t.Parallel()
	lim := Limits{RequestsPerMinute: 60, TokensPerMinute: 6000}
	busy := State{RequestsAt: at(30 * time.Second), TokensAt: at(40 * time.Second)}
	for _, tc := range []struct {
		name string
		s    State
		o    Outcome
		want State
	}{
		{name: "fewer tokens than reserved are given back", s: busy, o: Outcome{Tokens: -500},
			want: State{RequestsAt: at(30 * time.Second), TokensAt: at(35 * time.Second)}},
		{name: "more tokens than reserved are charged", s: busy, o: Outcome{Tokens: 100},
			want: State{RequestsAt: at(30 * time.Second), TokensAt: at(41 * time.Second)}},
		{name: "a call never made gives back its request and tokens", s: busy, o: Outcome{Requests: -1, Tokens: -1000},
			want: State{RequestsAt: at(29 * time.Second), TokensAt: at(30 * time.Second)}},
		{name: "a 429 pauses for its Retry-After", s: busy, o: Outcome{RateLimited: true, RetryAfter: 7 * time.Second},
			want: State{RequestsAt: at(30 * time.Second), TokensAt: at(40 * time.Second), PausedUntil: at(7 * time.Second)}},
		{name: "a 429 without Retry-After pauses a second", s: busy, o: Outcome{RateLimited: true},
			want: State{RequestsAt: at(30 * time.Second), TokensAt: at(40 * time.Second), PausedUntil: at(time.Second)}},
		{name: "a pause is never shortened", s: State{PausedUntil: at(9 * time.Second)}, o: Outcome{RateLimited: true, RetryAfter: time.Second},
			want: State{PausedUntil: at(9 * time.Second)}},
		{name: "the provider's emptier buckets win", s: busy,
			o:    Outcome{RateLimit: llm.RateLimit{Reported: true, ResetRequests: 45 * time.Second, ResetTokens: 20 * time.Second}},
			want: State{RequestsAt: at(45 * time.Second), TokensAt: at(40 * time.Second)}},
		{name: "a reset is read as at most a minute", s: State{},
			o:    Outcome{RateLimit: llm.RateLimit{Reported: true, ResetRequests: 6 * time.Minute, ResetTokens: 6 * time.Minute}},
			want: State{RequestsAt: at(time.Minute), TokensAt: at(time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := settle(tc.s, lim, tc.o, t0)
			if !got.RequestsAt.Equal(tc.want.RequestsAt) || !got.TokensAt.Equal(tc.want.TokensAt) || !got.PausedUntil.Equal(tc.want.PausedUntil) {
				t.Errorf("state = %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("an unlimited dimension ignores the provider's reset", func(t *testing.T) {
		t.Parallel()
		got := settle(State{}, Limits{RequestsPerMinute: 60}, Outcome{RateLimit: llm.RateLimit{ResetTokens: time.Minute}}, t0)
		if !got.TokensAt.IsZero() {
			t.Errorf("tokens_at = %v, want untouched", got.TokensAt)
		}
	})
}
