package llm

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimit is what a response said of the provider's rate limits in its x-ratelimit-*
// headers (OpenAI sends them all, Azure the remaining counts, self-hosted servers none).
type RateLimit struct {
	// Reported is false when the response carried none of the headers.
	Reported                         bool
	LimitRequests, RemainingRequests int
	LimitTokens, RemainingTokens     int
	ResetRequests, ResetTokens       time.Duration // until the budget is whole again
}

// parseRateLimit reads the x-ratelimit-* headers; a header absent or unreadable reads 0.
func parseRateLimit(h http.Header) RateLimit {
	rl := RateLimit{
		LimitRequests:     headerValue(h, "x-ratelimit-limit-requests", strconv.Atoi),
		RemainingRequests: headerValue(h, "x-ratelimit-remaining-requests", strconv.Atoi),
		ResetRequests:     headerValue(h, "x-ratelimit-reset-requests", time.ParseDuration),
		LimitTokens:       headerValue(h, "x-ratelimit-limit-tokens", strconv.Atoi),
		RemainingTokens:   headerValue(h, "x-ratelimit-remaining-tokens", strconv.Atoi),
		ResetTokens:       headerValue(h, "x-ratelimit-reset-tokens", time.ParseDuration),
	}
	for name := range h {
		rl.Reported = rl.Reported || strings.HasPrefix(strings.ToLower(name), "x-ratelimit-")
	}
	return rl
}

// headerValue is the header name read by parse, or the zero value.
func headerValue[T any](h http.Header, name string, parse func(string) (T, error)) T {
	v, err := parse(h.Get(name))
	if err != nil {
		var zero T
		return zero
	}
	return v
}

// callRecord is what the transport saw of a call: go-openai exposes neither whether a request
// left nor the response headers of an error or a stream.
type callRecord struct {
	sent       bool // the request reached the transport
	retryAfter time.Duration
	rateLimit  RateLimit
}

type callRecordKey struct{}

// withCallRecord returns ctx recording into a new callRecord.
func withCallRecord(ctx context.Context) (context.Context, *callRecord) {
	rec := &callRecord{}
	return context.WithValue(ctx, callRecordKey{}, rec), rec
}

// recorder fills the callRecord of a request's context.
type recorder struct{ next http.RoundTripper }

func (t recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec, _ := req.Context().Value(callRecordKey{}).(*callRecord)
	if rec != nil {
		rec.sent = true
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || rec == nil {
		return resp, err
	}
	rec.retryAfter = parseRetryAfter(resp.Header, time.Now())
	rec.rateLimit = parseRateLimit(resp.Header)
	return resp, nil
}

// parseRetryAfter reads retry-after-ms (OpenAI's) or Retry-After in seconds or as an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("retry-after-ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
