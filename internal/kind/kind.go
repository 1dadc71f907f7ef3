// Package kind declares the kinds of background job. A kind is declared once, in one file of
// internal/kinds: its name (also its queue), how its arguments are read and checked, its
// handler, its retry policy, timeout and concurrency, and where its jobs are kept. The worker
// runs every kind the same way: durable enqueue through the outbox, claim with a lease,
// retries with backoff, dead-lettering and requeue, cancellation, one trace from enqueue to
// handler, metrics with a kind label (docs/architecture.md, "Adding a kind").
package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

// Kind is one kind of background job.
type Kind struct {
	// Spec is how the store keeps the kind: Name (its queue), Table (zero: the shared jobs
	// table), and the optional Admit and Finished.
	jobstore.Spec
	// Decode reads and checks a message's arguments (a JSON object, the message's fields but
	// the envelope's) and returns them as they are to be kept. An error dead-letters the
	// message as invalid.
	Decode func(args json.RawMessage) (json.RawMessage, error)
	// Handle runs one attempt of a job and returns its result (a JSON object). Its context
	// ends at the kind's Timeout, when the job's user cancels it, or when the worker stops.
	// Errors are transient (retried with backoff) unless they say otherwise (see Error).
	Handle func(ctx context.Context, j jobstore.Run) (json.RawMessage, error)
	// Retry is the retry policy; zero fields take the worker's defaults.
	Retry Retry
	// Timeout bounds one attempt; Wait is the longest Handle may wait for a shared budget
	// before its work starts. A claimed job's lease covers both and a margin to store the
	// result, so another worker takes a job over only once its attempt must have ended.
	Timeout, Wait time.Duration
	// Concurrency is how many of its jobs one worker process runs at once (0: the worker's).
	Concurrency int
	// MaxMessageBytes bounds a message's body before it is decoded (0: 64 KiB).
	MaxMessageBytes int
	// Schedules are the kind's periodic work: a job of the kind enqueued at every slot of
	// each, once across all worker replicas (internal/schedule).
	Schedules []Schedule
}

// Schedule is a kind's periodic work: at every slot of Cron, one job of the kind with Args.
type Schedule struct {
	// Task names the schedule across all kinds (its jobs' ids are "<Task>:<slot>"): a kind
	// name's shape, at most 40 characters.
	Task string
	// Cron says when, in PostgreSQL's clock (UTC): 5 fields (minute hour day-of-month month
	// day-of-week), 6 with seconds first, or a descriptor (@daily, @every 1h). An operator
	// may change it with WORKER_SCHEDULES.
	Cron string
	// Args are the arguments of each job (nil: {}).
	Args json.RawMessage
}

// Retry is a kind's retry policy.
type Retry struct {
	MaxAttempts         int           // attempts before a job fails for good
	BaseDelay, MaxDelay time.Duration // backoff before the first retry, doubled for each next, capped
}

// DefaultMaxMessageBytes bounds the body of a kind's message unless it says otherwise.
const DefaultMaxMessageBytes = 64 << 10

// Validate says what is wrong with a declaration, if anything.
func (k Kind) Validate() error {
	switch {
	case !job.ValidKind(k.Name):
		return fmt.Errorf("kind: %q is not a kind name (dot-separated lower case words)", k.Name)
	case k.Decode == nil || k.Handle == nil:
		return fmt.Errorf("kind %s: Decode and Handle are required", k.Name)
	case k.Table.Name == "" || k.Table.Insert == "" || k.Table.Args == "":
		return fmt.Errorf("kind %s: no table", k.Name)
	}
	return nil
}

// Define declares a kind whose arguments are A and whose result is R, both JSON: a message's
// arguments are decoded strictly into A and checked by A's Validate method if it has one;
// handle's R is the job's result. The kind's jobs go to the shared jobs table unless k says
// otherwise.
func Define[A, R any](k Kind, handle func(ctx context.Context, j jobstore.Run, args A) (R, error)) Kind {
	if k.Table.Name == "" {
		k.Table = jobstore.SharedTable(k.Name)
	}
	k.Decode = func(raw json.RawMessage) (json.RawMessage, error) {
		a, err := decodeArgs[A](raw)
		if err != nil {
			return nil, err
		}
		return json.Marshal(a)
	}
	k.Handle = func(ctx context.Context, j jobstore.Run) (json.RawMessage, error) {
		a, err := decodeArgs[A](j.Args)
		if err != nil {
			return nil, Fail(job.ReasonInvalidMessage, err)
		}
		r, err := handle(ctx, j, a)
		if err != nil {
			return nil, err
		}
		return json.Marshal(r)
	}
	return k
}

// decodeArgs reads arguments strictly (unknown fields are an error) and validates them.
func decodeArgs[A any](raw json.RawMessage) (A, error) {
	var a A
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, fmt.Errorf("%w: the arguments do not fit: %s", job.ErrInvalidMessage, job.Clip(err.Error(), 200))
	}
	if v, ok := any(&a).(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return a, fmt.Errorf("%w: %w", job.ErrInvalidMessage, err)
		}
	}
	return a, nil
}

// Error is a handler's error that says what to do with its job; any other error is
// transient: retried with backoff until the attempts are spent.
type Error struct {
	// Permanent fails the job at once and dead-letters its message with Reason.
	Permanent bool
	Reason    string
	// Deferred puts the job back for RetryAfter without spending an attempt: its work was not
	// tried (a shared budget had no room soon enough).
	Deferred bool
	// RetryAfter is the least wait before the next attempt (a server's Retry-After, say).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Fail is a permanent failure for reason (a job.Reason*-like word for the DLQ): no retry.
func Fail(reason string, err error) error { return &Error{Permanent: true, Reason: reason, Err: err} }

// RetryAfter is a transient failure whose next attempt must wait at least d.
func RetryAfter(d time.Duration, err error) error { return &Error{RetryAfter: d, Err: err} }

// Defer puts the job back for d without spending an attempt.
func Defer(d time.Duration, err error) error { return &Error{Deferred: true, RetryAfter: d, Err: err} }

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
