package fakeopenai

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The nominal limits the x-ratelimit-* headers report when no limit is set (OpenAI's first
// tiers are of this order); only limits set with --limit-rpm or --limit-tpm are enforced.
const (
	DefaultLimitRPM = 10_000
	DefaultLimitTPM = 2_000_000
)

// rateLimiter is the organisation's limits as OpenAI applies them: requests and tokens per
// minute, each a bucket that refills continuously (x-ratelimit-reset-* is the time until it
// is whole again). A request is counted when it arrives, at its estimated tokens: the larger
// of max_tokens and a quarter of its prompt's characters, as OpenAI's rate-limit guide
// says; nothing is given back after the answer. A request the bucket has no room for is
// answered 429 and not counted.
type rateLimiter struct {
	rpm, tpm         int
	enforce          bool    // a limit was set: refuse over it
	requests, tokens float64 // used, refilling at rpm and tpm per minute
	at               time.Time
}

func newRateLimiter(rpm, tpm int) rateLimiter {
	return rateLimiter{rpm: cmp.Or(max(rpm, 0), DefaultLimitRPM), tpm: cmp.Or(max(tpm, 0), DefaultLimitTPM), enforce: rpm > 0 || tpm > 0}
}

// refill brings the buckets to now.
func (l *rateLimiter) refill(now time.Time) {
	if !l.at.IsZero() {
		minutes := now.Sub(l.at).Minutes()
		l.requests = max(0, l.requests-minutes*float64(l.rpm))
		l.tokens = max(0, l.tokens-minutes*float64(l.tpm))
	}
	l.at = now
}

// admit counts a request of tokens at now, or refuses it with a 429 (limitRefusal). Either
// way it returns the x-ratelimit-* headers of the buckets after it (Azure: the remaining
// counts only), and with a refusal Retry-After and retry-after-ms.
func (l *rateLimiter) admit(now time.Time, tokens int, azure bool) (http.Header, *limitRefusal) {
	l.refill(now)
	var refusal *limitRefusal
	switch {
	case !l.enforce: // headers of the nominal budget, which may read 0 remaining
		l.requests, l.tokens = min(l.requests+1, float64(l.rpm)), min(l.tokens+float64(tokens), float64(l.tpm))
	case l.requests+1 > float64(l.rpm):
		refusal = newRefusal("requests", "requests per min (RPM)", l.rpm, l.requests, 1)
	case l.tokens+float64(tokens) > float64(l.tpm):
		refusal = newRefusal("tokens", "tokens per min (TPM)", l.tpm, l.tokens, tokens)
	default:
		l.requests++
		l.tokens += float64(tokens)
	}
	h := http.Header{}
	h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(int(float64(l.rpm)-l.requests)))
	h.Set("X-Ratelimit-Remaining-Tokens", strconv.Itoa(int(float64(l.tpm)-l.tokens)))
	if !azure {
		h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(l.rpm))
		h.Set("X-Ratelimit-Limit-Tokens", strconv.Itoa(l.tpm))
		h.Set("X-Ratelimit-Reset-Requests", refillTime(l.requests, l.rpm).String())
		h.Set("X-Ratelimit-Reset-Tokens", refillTime(l.tokens, l.tpm).String())
	}
	if refusal != nil {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(refusal.wait.Seconds())), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(refusal.wait.Milliseconds(), 10))
	}
	return h, refusal
}

// refillTime is how long used units take to refill at perMinute, rounded up to the
// millisecond (past float noise).
func refillTime(used float64, perMinute int) time.Duration {
	ms := used / float64(perMinute) * float64(time.Minute/time.Millisecond)
	return time.Duration(math.Ceil(ms-1e-6)) * time.Millisecond
}

// limitRefusal is a request over a limit: which one (OpenAI's error type: requests or
// tokens), its message, and the wait until the request would fit.
type limitRefusal struct {
	kind, message string
	wait          time.Duration
}

// newRefusal is the refusal of requested units when used of limit are taken.
func newRefusal(kind, what string, limit int, used float64, requested int) *limitRefusal {
	wait := refillTime(used+float64(requested)-float64(limit), limit)
	return &limitRefusal{kind: kind, wait: wait, message: fmt.Sprintf(
		"Rate limit reached for fakeopenai in organization org-fake on %s: Limit %d, Used %d, Requested %d. "+
			"Please try again in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
		what, limit, int(math.Ceil(used)), requested, wait)}
}
