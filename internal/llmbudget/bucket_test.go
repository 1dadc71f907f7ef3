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
		{name: "a turn past the bound takes no turn but a place in line, back half maxWait before it", s: State{RequestsAt: at(70 * time.Second)}, lim: rpm60,
			maxWait: 5 * time.Second, want: State{RequestsAt: at(70 * time.Second), LineAt: at(13 * time.Second)}, wantWait: 9500 * time.Millisecond},
		{name: "deferred calls queue one interval apart", s: State{RequestsAt: at(70 * time.Second), LineAt: at(80 * time.Second)}, lim: rpm60,
			maxWait: 5 * time.Second, want: State{RequestsAt: at(70 * time.Second), LineAt: at(81 * time.Second)}, wantWait: 77500 * time.Millisecond},
		{name: "a line already past is joined at the call's turn", s: State{RequestsAt: at(70 * time.Second), LineAt: at(-time.Hour)}, lim: rpm60,
			maxWait: 5 * time.Second, want: State{RequestsAt: at(70 * time.Second), LineAt: at(13 * time.Second)}, wantWait: 9500 * time.Millisecond},
		{name: "the line is spaced by the slower limit", s: State{TokensAt: at(2 * time.Minute)}, lim: Limits{RequestsPerMinute: 60, TokensPerMinute: 6000},
			tokens: 3000, maxWait: 10 * time.Second, want: State{TokensAt: at(2 * time.Minute), LineAt: at(121 * time.Second)}, wantWait: 86 * time.Second},
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
			want: State{PausedUntil: at(30 * time.Second), LineAt: at(31 * time.Second)}, wantWait: 27500 * time.Millisecond},
		{name: "an instant long past counts as an idle budget", s: State{RequestsAt: at(-time.Hour)}, lim: rpm60,
			want: State{RequestsAt: at(time.Second)}, wantOK: true},
		{name: "no limits: nothing is counted", s: State{RequestsAt: at(-time.Hour)}, tokens: 100,
			want: State{RequestsAt: at(-time.Hour)}, wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, wait, ok := reserve(tc.s, tc.lim, tc.tokens, t0, tc.maxWait)
			if !got.RequestsAt.Equal(tc.want.RequestsAt) || !got.TokensAt.Equal(tc.want.TokensAt) ||
				!got.PausedUntil.Equal(tc.want.PausedUntil) || !got.LineAt.Equal(tc.want.LineAt) {
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

// A backlog far beyond the limit drains at the limit's pace, each job deferred about once:
// deferred calls come back spread out in line, not all together again and again. The run is
// simulated: 1,000 jobs queued at once for 160 worker slots (10 replicas × 16), 60 requests
// a minute, calls of a second, the worker's deferral delay being the budget's.
func TestABacklogDrainsAtThePaceWithFewDeferrals(t *testing.T) {
	t.Parallel()
	const (
		jobs, slots = 1000, 160
		maxWait     = 20 * time.Second
		call        = time.Second
	)
	lim := Limits{RequestsPerMinute: 60}
	var (
		s         State
		ready     = make([]time.Time, jobs) // when each job's message is next due
		deferrals = make([]int, jobs)
		done      = make([]bool, jobs)
		free      = make([]time.Time, slots) // when each worker slot is next free
		last      time.Time                  // the last call's start
	)
	for i := range ready {
		ready[i] = t0
	}
	for left := jobs; left > 0; left-- {
		// The next job due (the first in the queue at a tie), on the slot free soonest.
		j, k := -1, 0
		for i := range ready {
			if !done[i] && (j < 0 || ready[i].Before(ready[j])) {
				j = i
			}
		}
		for i := range free {
			if free[i].Before(free[k]) {
				k = i
			}
		}
		now := later(ready[j], free[k])
		next, wait, ok := reserve(s, lim, 0, now, maxWait)
		s = next
		if !ok {
			deferrals[j]++
			ready[j], free[k] = now.Add(wait), now
			left++
			continue
		}
		done[j], free[k] = true, now.Add(wait+call)
		last = later(last, now.Add(wait))
	}
	total, most := 0, 0
	for _, d := range deferrals {
		total, most = total+d, max(most, d)
	}
	t.Logf("%d jobs, %d slots: %d deferrals, at most %d for one job; last call %v after the first", jobs, slots, total, most, last.Sub(t0))
	if most > 2 || total > jobs {
		t.Errorf("%d deferrals in all, %d at most for one job; want about one per job past the first slots, two at most", total, most)
	}
	// A full bucket (less the headroom) at once, then one a second.
	if want := time.Duration(jobs-59) * time.Second; last.Sub(t0) < want-2*time.Second || last.Sub(t0) > want+5*time.Second {
		t.Errorf("the last call started %v after the first, want about %v", last.Sub(t0), want)
	}
}
