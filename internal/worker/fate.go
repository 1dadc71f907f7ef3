package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

// The decisions of the worker, as pure functions: what becomes of a claimed job once its
// attempt ended (docs/architecture.md, "Retries"), and how a delivery is settled once the store
// answered. handle and process carry them out.

// action is what becomes of a claimed job.
type action int

const (
	actionComplete action = iota + 1 // store the result: completed, announced
	actionRetry                      // back to pending, due after delay, with a new message
	actionFail                       // failed for good, announced; the message goes to the DLQ
	actionRelease                    // give the job back (pending, due now), requeue the message
	actionDrop                       // ack and change nothing: its user cancelled it, it is final
	actionDefer                      // the work was not tried (a shared budget): back to pending, due after delay, no attempt spent
)

func (a action) String() string {
	return name(int(a), "complete", "retry", "fail", "release", "drop", "defer")
}

// fate is the decision about a claimed job.
type fate struct {
	action action
	reason string        // actionFail: the DLQ reason, job.Reason*
	errMsg string        // actionRetry, actionFail: the error stored with the job; actionDefer: why, for the log
	delay  time.Duration // actionRetry, actionDefer: the wait before the next attempt
}

// attempt is what happened to a claimed job: the input of its fate.
type attempt struct {
	err      error // the handler's error; nil: it returned a result
	cause    error // context.Cause of the job's context: nil while it runs, ErrJobCancelled, or the drain's end
	attempts int   // attempts since the job was last requeued from the DLQ, this one included
	panic    any   // recovered while handling the job, before its outcome was stored; nil: none
}

// policy is the retry policy of a Config, with its source of jitter.
type policy struct {
	maxAttempts         int
	baseDelay, maxDelay time.Duration
	rnd                 func(n int64) int64 // a value in [0, n)
}

// decide is a claimed job's fate. In order: a panic is a transient failure retried after the
// base delay; a result is stored even if the job was cancelled meanwhile; a job its user
// cancelled is dropped; a job the drain stopped is given back; work a shared budget deferred
// is put back for the time the budget gave it (its place in the budget's line: no jitter, the
// line spreads them), its attempt not spent; a permanent failure fails at once; a spent
// attempt budget fails; anything else is retried after the jittered backoff, never sooner
// than the error's RetryAfter (a server's Retry-After).
func (p policy) decide(a attempt) fate {
	kerr, _ := kind.As(a.err)
	switch {
	case a.panic != nil:
		return fate{action: actionRetry, errMsg: fmt.Sprintf("internal error: %v", a.panic), delay: p.baseDelay}
	case a.err == nil:
		return fate{action: actionComplete}
	case errors.Is(a.cause, ErrJobCancelled):
		return fate{action: actionDrop}
	case a.cause != nil:
		return fate{action: actionRelease}
	case kerr != nil && kerr.Deferred:
		return fate{action: actionDefer, errMsg: a.err.Error(), delay: kerr.RetryAfter}
	case kerr != nil && kerr.Permanent:
		return fate{action: actionFail, reason: kerr.Reason, errMsg: a.err.Error()}
	case a.attempts >= p.maxAttempts:
		return fate{action: actionFail, reason: job.ReasonAttemptsExhausted,
			errMsg: fmt.Sprintf("gave up after %d attempts; last error: %v", a.attempts, a.err)}
	}
	var retryAfter time.Duration
	if kerr != nil {
		retryAfter = kerr.RetryAfter
	}
	return fate{action: actionRetry, errMsg: a.err.Error(), delay: retryDelay(a.attempts, p.baseDelay, p.maxDelay, retryAfter, p.rnd)}
}

// settlement is how a delivery ends once the store answered the worker's step for it.
type settlement int

const (
	settleAck     settlement = iota + 1 // done with the message: its outcome is stored, or moot
	settleRelease                       // give the leased job back, then requeue the message
	settleRequeue                       // requeue the message: nothing was claimed
)

func (s settlement) String() string { return name(int(s), "ack", "release", "requeue") }

// name is the name of the nth (from 1) constant of names, for test failures and logs.
func name(n int, names ...string) string {
	if n < 1 || n > len(names) {
		return fmt.Sprintf("invalid(%d)", n)
	}
	return names[n-1]
}

// settlementAfter is how a delivery ends after a store step returned err, and the outcome it gives
// the delivery's span ("" when the step's own). nil: stored, ack. ErrLeaseLost: another
// worker holds the job now, ack. ErrClaimLost: the job is pending again (a PostgreSQL crash
// undid its claim) and this message may be its only one, requeue. ErrNotClaimable: a
// duplicate, ack. Anything else reaches here
// only when shutdown interrupted the step (persist retries outages): give back what was taken.
func settlementAfter(err error, leased bool) (settlement, string) {
	switch {
	case err == nil:
		return settleAck, ""
	case errors.Is(err, jobstore.ErrLeaseLost):
		return settleAck, "lease_lost"
	case errors.Is(err, jobstore.ErrClaimLost):
		return settleRequeue, "claim_lost"
	case errors.Is(err, jobstore.ErrNotClaimable):
		return settleAck, "duplicate"
	case leased:
		return settleRelease, "released"
	default:
		return settleRequeue, "requeued"
	}
}

// isVerdict tells a store answer that retrying cannot change (done, or refused for good) from
// a failure to reach the database.
func isVerdict(err error) bool {
	var limitErr *jobstore.LimitError
	return err == nil || errors.Is(err, jobstore.ErrLeaseLost) || errors.Is(err, jobstore.ErrClaimLost) || errors.Is(err, jobstore.ErrNotClaimable) ||
		errors.Is(err, jobstore.ErrUnknownUser) || errors.Is(err, jobstore.ErrLeaseHeld) || errors.As(err, &limitErr) ||
		database.IsDataError(err)
}
