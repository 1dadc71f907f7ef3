package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

// TestDecide is the "Retries" table of docs/architecture.md, as the worker decides it: every
// class of handler outcome (a kind error says what it means: permanent with a reason, deferred,
// or transient with a least wait; any other error is transient) × the attempts spent × how the
// job's context ended. The rows are the cover letters' LLM outcomes, as the kind reports them
// (what each LLM error becomes is the kind's table, in internal/kinds).
func TestDecide(t *testing.T) {
	t.Parallel()
	p := policy{maxAttempts: 3, baseDelay: time.Second, maxDelay: time.Minute, rnd: func(n int64) int64 { return n - 1 }}
	var (
		rejected    = kind.Fail(job.ReasonLLMRejected, errors.New("the LLM rejected the request: llm: HTTP 400: bad model"))
		rateLimited = kind.RetryAfter(30*time.Second, errors.New("llm: HTTP 429: slow down"))
		shortWait   = kind.RetryAfter(time.Millisecond, errors.New("llm: HTTP 429: slow down"))
		unavailable = kind.RetryAfter(0, errors.New("llm: HTTP 503: overloaded"))
		timedOut    = kind.RetryAfter(0, errors.New("llm: no answer within 1m0s"))
		other       = errors.New("connection reset")
		hourWait    = kind.RetryAfter(time.Hour, errors.New("llm: HTTP 429: slow down"))
		truncated   = kind.Fail(job.ReasonLLMTruncated, errors.New("the letter is incomplete: the answer reached the cap"))
		filtered    = kind.Fail(job.ReasonLLMContentFilter, errors.New("the AI provider's content filter refused the job description or CV: filtered"))
		empty       = kind.Fail(job.ReasonLLMEmptyAnswer, errors.New("the model returned no letter: empty"))
		refused     = kind.Fail(job.ReasonLLMMisconfigured, errors.New("the worker's LLM settings do not fit the model: max_tokens"))
		drained     = fmt.Errorf("llm: %w", context.Canceled)
		cancelled   = fmt.Errorf("llm: %w", context.Canceled)
		deferred    = kind.Defer(20*time.Second, errors.New("llm: deferred by the rate budget: 20s"))
	)
	tests := []struct {
		name string
		in   attempt
		want fate
	}{
		{"letter written", attempt{attempts: 1}, fate{action: actionComplete}},
		{"letter written on the last attempt", attempt{attempts: 3}, fate{action: actionComplete}},
		{"letter written as its user cancelled: stored, the store refuses it", attempt{attempts: 1, cause: ErrJobCancelled}, fate{action: actionComplete}},
		{"letter written as the drain ended", attempt{attempts: 1, cause: context.Canceled}, fate{action: actionComplete}},

		{"rejected (4xx)", attempt{err: rejected, attempts: 1},
			fate{action: actionFail, reason: job.ReasonLLMRejected, errMsg: rejected.Error()}},
		{"rejected past the budget: still a rejection", attempt{err: rejected, attempts: 9},
			fate{action: actionFail, reason: job.ReasonLLMRejected, errMsg: rejected.Error()}},
		{"rejected, wrapped", attempt{err: fmt.Errorf("stream: %w", rejected), attempts: 1},
			fate{action: actionFail, reason: job.ReasonLLMRejected, errMsg: "stream: " + rejected.Error()}},

		{"5xx, first attempt: base backoff", attempt{err: unavailable, attempts: 1},
			fate{action: actionRetry, errMsg: unavailable.Error(), delay: time.Second}},
		{"5xx, second attempt: doubled", attempt{err: unavailable, attempts: 2},
			fate{action: actionRetry, errMsg: unavailable.Error(), delay: 2 * time.Second}},
		{"timeout", attempt{err: timedOut, attempts: 1},
			fate{action: actionRetry, errMsg: timedOut.Error(), delay: time.Second}},
		{"429 with Retry-After longer than the backoff", attempt{err: rateLimited, attempts: 1},
			fate{action: actionRetry, errMsg: rateLimited.Error(), delay: 30 * time.Second}},
		{"429 with Retry-After shorter than the backoff", attempt{err: shortWait, attempts: 2},
			fate{action: actionRetry, errMsg: shortWait.Error(), delay: 2 * time.Second}},
		{"429 with a Retry-After beyond the longest backoff: capped", attempt{err: hourWait, attempts: 1},
			fate{action: actionRetry, errMsg: hourWait.Error(), delay: time.Minute}},
		{"answer cut at the token cap", attempt{err: truncated, attempts: 1},
			fate{action: actionFail, reason: job.ReasonLLMTruncated, errMsg: truncated.Error()}},
		{"content filter", attempt{err: filtered, attempts: 1},
			fate{action: actionFail, reason: job.ReasonLLMContentFilter, errMsg: filtered.Error()}},
		{"empty answer", attempt{err: empty, attempts: 1},
			fate{action: actionFail, reason: job.ReasonLLMEmptyAnswer, errMsg: empty.Error()}},
		{"refused before sending: the worker's settings", attempt{err: refused, attempts: 1},
			fate{action: actionFail, reason: job.ReasonLLMMisconfigured, errMsg: refused.Error()}},
		{"not a kind error (network): transient", attempt{err: other, attempts: 2},
			fate{action: actionRetry, errMsg: other.Error(), delay: 2 * time.Second}},
		{"a wrapped Retry-After is honoured", attempt{err: fmt.Errorf("stream: %w", rateLimited), attempts: 1},
			fate{action: actionRetry, errMsg: "stream: " + rateLimited.Error(), delay: 30 * time.Second}},

		{"transient on the last attempt", attempt{err: unavailable, attempts: 3},
			fate{action: actionFail, reason: job.ReasonAttemptsExhausted, errMsg: "gave up after 3 attempts; last error: " + unavailable.Error()}},
		{"other error past the budget", attempt{err: other, attempts: 4},
			fate{action: actionFail, reason: job.ReasonAttemptsExhausted, errMsg: "gave up after 4 attempts; last error: connection reset"}},
		{"429 on the last attempt: Retry-After does not extend the budget", attempt{err: rateLimited, attempts: 3},
			fate{action: actionFail, reason: job.ReasonAttemptsExhausted, errMsg: "gave up after 3 attempts; last error: " + rateLimited.Error()}},

		{"user cancel", attempt{err: cancelled, cause: ErrJobCancelled, attempts: 1}, fate{action: actionDrop}},
		{"user cancel on the last attempt", attempt{err: cancelled, cause: ErrJobCancelled, attempts: 3}, fate{action: actionDrop}},
		{"user cancel as the LLM rejected", attempt{err: rejected, cause: ErrJobCancelled, attempts: 1}, fate{action: actionDrop}},
		{"drain timeout", attempt{err: drained, cause: context.Canceled, attempts: 1}, fate{action: actionRelease}},
		{"drain timeout on the last attempt: given back, not failed", attempt{err: drained, cause: context.Canceled, attempts: 3}, fate{action: actionRelease}},
		{"deferred by the rate budget: put back for the time it gave", attempt{err: deferred, attempts: 1},
			fate{action: actionDefer, errMsg: deferred.Error(), delay: 20 * time.Second}},
		{"deferred on the last attempt: not failed, no attempt was made", attempt{err: deferred, attempts: 3},
			fate{action: actionDefer, errMsg: deferred.Error(), delay: 20 * time.Second}},
		{"deferred as its user cancelled", attempt{err: deferred, cause: ErrJobCancelled, attempts: 1}, fate{action: actionDrop}},
		{"deferred as the drain ended", attempt{err: deferred, cause: context.Canceled, attempts: 1}, fate{action: actionRelease}},
		{"drain timeout as the LLM rejected", attempt{err: rejected, cause: context.Canceled, attempts: 1}, fate{action: actionRelease}},

		{"panic", attempt{panic: "boom", attempts: 1}, fate{action: actionRetry, errMsg: "internal error: boom", delay: time.Second}},
		{"panic past the budget: still retried", attempt{panic: errors.New("nil map"), attempts: 9},
			fate{action: actionRetry, errMsg: "internal error: nil map", delay: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.decide(tt.in); got != tt.want {
				t.Errorf("decide = %+v (%v), want %+v (%v)", got, got.action, tt.want, tt.want.action)
			}
		})
	}
}

// TestDecideJittersWithinTheUpperHalf: the retry delay is the jittered backoff, within
// [backoff/2, backoff], and capped.
func TestDecideJittersWithinTheUpperHalf(t *testing.T) {
	t.Parallel()
	lowest := policy{maxAttempts: 10, baseDelay: time.Second, maxDelay: 4 * time.Second, rnd: func(int64) int64 { return 0 }}
	err := kind.RetryAfter(0, errors.New("llm: HTTP 502: bad gateway"))
	for attempts, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 8: 2 * time.Second} {
		if got := lowest.decide(attempt{err: err, attempts: attempts}); got.delay != want {
			t.Errorf("attempt %d: delay %v, want %v", attempts, got.delay, want)
		}
	}
}

func TestSettlementAfter(t *testing.T) {
	t.Parallel()
	outage := fmt.Errorf("jobstore: complete job-1: %w", errors.New("dial tcp 127.0.0.1:5432: connection refused"))
	tests := []struct {
		name        string
		err         error
		leased      bool
		want        settlement
		wantOutcome string
		verdict     bool
	}{
		{"stored", nil, true, settleAck, "", true},
		{"dead letter stored", nil, false, settleAck, "", true},
		{"lease lost to another worker", fmt.Errorf("jobstore: %w", jobstore.ErrLeaseLost), true, settleAck, "lease_lost", true},
		{"claim undone by a PostgreSQL crash", jobstore.ErrClaimLost, true, settleRequeue, "claim_lost", true},
		{"duplicate message", jobstore.ErrNotClaimable, false, settleAck, "duplicate", true},
		{"claim interrupted by shutdown", context.Canceled, false, settleRequeue, "requeued", false},
		{"dead letter interrupted by shutdown", context.DeadlineExceeded, false, settleRequeue, "requeued", false},
		{"outcome interrupted by shutdown", context.Canceled, true, settleRelease, "released", false},
		{"outage when persist gave up", outage, true, settleRelease, "released", false},
		{"outage before a claim", outage, false, settleRequeue, "requeued", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, outcome := settlementAfter(tt.err, tt.leased)
			if got != tt.want || outcome != tt.wantOutcome {
				t.Errorf("settlementAfter = %v %q, want %v %q", got, outcome, tt.want, tt.wantOutcome)
			}
			if v := isVerdict(tt.err); v != tt.verdict {
				t.Errorf("isVerdict = %v, want %v: persist would retry a verdict or give up on an outage", v, tt.verdict)
			}
		})
	}
}

func TestActionAndSettlementNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ got, want string }{
		{actionComplete.String(), "complete"}, {actionDrop.String(), "drop"}, {action(0).String(), "invalid(0)"},
		{actionDefer.String(), "defer"}, {action(7).String(), "invalid(7)"}, {settleRequeue.String(), "requeue"}, {settlement(-1).String(), "invalid(-1)"},
	} {
		if tt.got != tt.want {
			t.Errorf("name %q, want %q", tt.got, tt.want)
		}
	}
}
