package llmbudget

import (
	"time"

	"github.com/careerops/jobs/internal/llm"
)

// The arithmetic of a budget, as pure functions of its State and the time. Store carries
// them out on the shared row; nothing else computes a budget.

// window is the period the provider's limits are counted over: OpenAI's are per minute.
const window = time.Minute

// headroom is the part of the window a budget keeps unspent: a call reaches the provider a
// little after it took its turn, and not every call takes as long, so the provider may count
// a burst a little later than the budget did. Keeping a second's worth of calls in hand
// absorbs up to a second of such jitter; it shrinks the first burst, not the steady rate.
const headroom = time.Second

// minPause is how long a 429 without Retry-After pauses the budget.
const minPause = time.Second

// Limits are a budget's allowances per minute; 0 leaves that dimension unlimited.
type Limits struct {
	RequestsPerMinute int
	TokensPerMinute   int
}

// State is a budget's shared state. Each limit is a GCRA bucket (the generic cell rate
// algorithm) held as one instant: when the bucket would be whole again after every
// reservation so far. A call may start once that instant, its own cost included, is at most
// a window (less the headroom) ahead; a call that must wait reserves its place, so waiters
// go in turn. A call whose turn is too far off takes a place in the line of deferred calls
// instead, LineAt: when the line's last call would have its turn.
type State struct {
	RequestsAt  time.Time
	TokensAt    time.Time
	PausedUntil time.Time // no call starts before: a 429's Retry-After
	LineAt      time.Time
}

// cost is the time n units take to refill at perMinute; 0 when unlimited.
func cost(n, perMinute int) time.Duration {
	if perMinute <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(window) / int64(perMinute))
}

// later is the later of two instants.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// reserve takes one request of tokens from s at now: the call may start after wait. A call
// whose turn is more than maxWait away is deferred (ok false): it takes no turn but the next
// place in the line of deferred calls, spaced as the budget lets calls go, and wait says when
// to come back: half maxWait before that place's turn, to wait in line then. So a backlog
// comes back spread at the budget's pace, each call about once, rather than all together
// again and again. A call of more tokens than the whole budget is counted as the whole
// budget: it waits for a full bucket, never forever.
func reserve(s State, lim Limits, tokens int, now time.Time, maxWait time.Duration) (next State, wait time.Duration, ok bool) {
	if lim.TokensPerMinute > 0 {
		tokens = min(tokens, lim.TokensPerMinute)
	}
	next, start := s, later(now, s.PausedUntil)
	if lim.RequestsPerMinute > 0 {
		next.RequestsAt = later(s.RequestsAt, now).Add(cost(1, lim.RequestsPerMinute))
		start = later(start, next.RequestsAt.Add(headroom-window))
	}
	if lim.TokensPerMinute > 0 {
		next.TokensAt = later(s.TokensAt, now).Add(cost(max(tokens, 0), lim.TokensPerMinute))
		start = later(start, next.TokensAt.Add(headroom-window))
	}
	if wait = start.Sub(now); wait <= maxWait {
		return next, wait, true
	}
	place := later(s.LineAt, start)
	s.LineAt = place.Add(max(cost(1, lim.RequestsPerMinute), cost(max(tokens, 0), lim.TokensPerMinute)))
	return s, place.Sub(now) - maxWait/2, false
}

// Outcome is what a reserved call turned out to cost and what the provider said.
type Outcome struct {
	// Requests and Tokens are added to what was reserved: negative gives back (a call that
	// used fewer tokens than reserved, or was never made), positive charges more.
	Requests, Tokens int
	// RetryAfter, when positive, pauses the budget that long: the provider answered 429.
	// RateLimited with no RetryAfter pauses it minPause.
	RateLimited bool
	RetryAfter  time.Duration
	// RateLimit is what the provider's headers said; its reset times are how long the
	// provider's own buckets take to be whole again, which the budget's may not undercut.
	RateLimit llm.RateLimit
}

// settle applies a reserved call's outcome to s at now.
func settle(s State, lim Limits, o Outcome, now time.Time) State {
	s.RequestsAt = s.RequestsAt.Add(cost(o.Requests, lim.RequestsPerMinute))
	s.TokensAt = s.TokensAt.Add(cost(o.Tokens, lim.TokensPerMinute))
	if o.RateLimited {
		s.PausedUntil = later(s.PausedUntil, now.Add(max(o.RetryAfter, minPause)))
	}
	// The provider's buckets may be emptier than ours: other clients of the organisation, or
	// tokens it counts otherwise (OpenAI reserves max_tokens at once). Its reset time is its
	// bucket's instant; ours may not be earlier.
	if lim.RequestsPerMinute > 0 && o.RateLimit.ResetRequests > 0 {
		s.RequestsAt = later(s.RequestsAt, now.Add(min(o.RateLimit.ResetRequests, window)))
	}
	if lim.TokensPerMinute > 0 && o.RateLimit.ResetTokens > 0 {
		s.TokensAt = later(s.TokensAt, now.Add(min(o.RateLimit.ResetTokens, window)))
	}
	return s
}
