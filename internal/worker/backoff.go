package worker

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before retry number attempt (1 for the first retry): exponential from
// base, capped at limit, with "equal jitter" — a random point in the upper half — so retries
// of jobs that failed together spread out. rnd returns a value in [0, n).
func Backoff(attempt int, base, limit time.Duration, rnd func(n int64) int64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return time.Duration(half + rnd(half+1))
}

// RetryDelay is the wait before the next attempt: the jittered backoff, but never less than
// what the LLM asked for with Retry-After, up to limit.
func RetryDelay(attempt int, base, limit, retryAfter time.Duration) time.Duration {
	return retryDelay(attempt, base, limit, retryAfter, rand.Int64N)
}

func retryDelay(attempt int, base, limit, retryAfter time.Duration, rnd func(n int64) int64) time.Duration {
	return max(Backoff(attempt, base, limit, rnd), min(retryAfter, limit))
}
