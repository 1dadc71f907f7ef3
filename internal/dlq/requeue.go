package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

const (
	// MaxScan caps how many messages a Requeue of one job looks through: the ones that do not
	// match stay unacked, held by the caller's channel, until it closes.
	MaxScan = 10000
	// stepTimeout bounds the handling of one message. It runs on a context that the caller's
	// cancellation does not reach, so a message is always either fully requeued or left in
	// the DLQ.
	stepTimeout = 30 * time.Second
)

// JobRequeuer is what Requeue needs from the jobs of one kind (*jobstore.Runs).
type JobRequeuer interface {
	// Kind names the kind: its DLQ is where Requeue takes messages from, its queue where it
	// puts them.
	Kind() string
	// Requeue resets a failed job to pending and writes its message to the outbox;
	// jobstore.ErrNotInDLQState when it is not failed, jobstore.ErrNotFound when it has no row.
	Requeue(ctx context.Context, jobID string, headers map[string]string) (jobstore.Run, error)
	// Get returns a job whoever owns it; jobstore.ErrNotFound when it has no row.
	Get(ctx context.Context, jobID string) (jobstore.Run, error)
}

// Target selects what Requeue handles: every message in the DLQ (All), or one job's (JobID).
// Exactly one of the two is set.
type Target struct {
	All   bool
	JobID string
}

// ErrBadTarget is Requeue's answer to a Target that is neither All nor a valid job id.
var ErrBadTarget = errors.New("dlq: target must be all messages or one valid job id")

func (t Target) validate() error {
	switch {
	case t.All && t.JobID != "":
		return fmt.Errorf("%w: got both", ErrBadTarget)
	case !t.All && !job.ValidID(t.JobID):
		return fmt.Errorf("%w: got %q", ErrBadTarget, t.JobID)
	}
	return nil
}

// Action is what Requeue did with one message.
type Action int

// The outcomes of one message (or, for RequeuedFromDatabase, of a job without one).
const (
	// Requeued: the body names a failed job; the job got a fresh attempt budget and its
	// generate message was written to the outbox, which the running relays publish.
	Requeued Action = iota + 1
	// Skipped: the body names a job that is not failed (completed, pending, …); the message
	// was dropped.
	Skipped
	// Republished: the body names a job with no row, or is not a job (Outcome.JobID is "");
	// the message was published again to the generate queue as it was, minus its death
	// headers.
	Republished
	// RequeuedFromDatabase: the target job is failed but had no message in the DLQ; it was
	// requeued as with Requeued.
	RequeuedFromDatabase
)

// Outcome is what Requeue did with one message, reported once it is stored and the message
// acked.
type Outcome struct {
	Action    Action
	JobID     string     // the body's jobId; "" when the message is not a job
	MessageID string     // "" for RequeuedFromDatabase
	Status    job.Status // for Skipped: the job's status ("" if it could not be read)
}

// Result sums up a Requeue.
type Result struct {
	// Requeued counts the Requeued, Republished and RequeuedFromDatabase outcomes.
	Requeued int
	// Skipped counts the Skipped outcomes.
	Skipped int
	// Seen counts the messages taken off the DLQ, other jobs' included.
	Seen int
	// Present is how many messages the DLQ held when Requeue took its first one.
	Present int
	// Capped reports that a Requeue of one job looked at the first MaxScan messages only.
	Capped bool
	// Interrupted reports that ctx ended before every message to handle was handled; running
	// it again handles the rest.
	Interrupted bool
}

// NotRequeuedError is Requeue's answer for a target job that had no message in the DLQ and is
// not failed: errors.Is(err, jobstore.ErrNotFound) when it has no row either,
// errors.Is(err, jobstore.ErrNotInDLQState) when it has one.
type NotRequeuedError struct {
	JobID  string
	Status job.Status // "" when the job has no row
}

func (e *NotRequeuedError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("job %s is neither in the DLQ nor in the database", e.JobID)
	}
	return fmt.Sprintf("job %s is not in the DLQ and its status is %s, not failed: nothing to requeue", e.JobID, e.Status)
}

func (e *NotRequeuedError) Unwrap() error {
	if e.Status == "" {
		return jobstore.ErrNotFound
	}
	return jobstore.ErrNotInDLQState
}

// Requeue takes the messages present in the DLQ when it starts (so a message that comes back
// while it runs is not handled twice) off the queue with basic.get on ch and handles those
// of target:
//
//   - a failed job is requeued through store (Requeued);
//   - a job that is not failed is dropped (Skipped);
//   - a job with no row, or a body that is not a job, is published again to the generate
//     queue on ch with a publisher confirm, minus its death headers (Republished);
//
// and acks each message only once its outcome is stored, then calls report (if not nil) with
// it; an error from report stops Requeue. Messages of other jobs stay unacked, back in the DLQ
// when the caller closes ch, which Requeue puts in confirm mode when it first republishes.
//
// With target.JobID, at most MaxScan messages are looked at, and a failed job without a
// message is requeued from the database (RequeuedFromDatabase); a job that is neither in the
// DLQ nor failed is a *NotRequeuedError.
//
// Requeue stops between two messages when ctx ends and reports it in Result.Interrupted, with
// a nil error. On an error, the Result counts what was done before it.
func Requeue(ctx context.Context, ch *amqp.Channel, store JobRequeuer, target Target, report func(Outcome) error) (Result, error) {
	if err := target.validate(); err != nil {
		return Result{}, err
	}
	r := &requeuer{ch: ch, store: store, target: target, report: report}
	matched, err := r.drain(ctx)
	if err != nil {
		return r.res, err
	}
	if target.JobID != "" && matched == 0 && !r.res.Interrupted {
		if err := r.fromDatabase(ctx, target.JobID); err != nil {
			return r.res, err
		}
	}
	return r.res, nil
}

// requeuer is the state of one Requeue.
type requeuer struct {
	ch         *amqp.Channel
	store      JobRequeuer
	target     Target
	report     func(Outcome) error
	confirming bool // ch is in confirm mode
	res        Result
}

// drain goes through the messages present when it starts, handling those of the target, and
// returns how many it handled.
func (r *requeuer) drain(ctx context.Context) (matched int, err error) {
	budget := -1 // unknown until the first get
	for budget != 0 {
		if ctx.Err() != nil {
			r.res.Interrupted = true
			return matched, nil
		}
		d, ok, err := r.ch.Get(job.DLQ(r.store.Kind()), false)
		if err != nil {
			return matched, fmt.Errorf("get from %s: %w", job.DLQ(r.store.Kind()), err)
		}
		if !ok {
			return matched, nil
		}
		if budget < 0 {
			budget = int(d.MessageCount) + 1
			r.res.Present = budget
			if r.target.JobID != "" && budget > MaxScan {
				budget, r.res.Capped = MaxScan, true
			}
		}
		budget--
		r.res.Seen++
		if r.target.JobID != "" && jobIDOf(d.Body) != r.target.JobID {
			continue // stays unacked: back in the DLQ when the channel closes
		}
		matched++
		if err := r.handle(ctx, d); err != nil {
			return matched, err
		}
	}
	return matched, nil
}

// handle requeues one DLQ message and acks it once its outcome is stored.
func (r *requeuer) handle(ctx context.Context, d amqp.Delivery) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
	defer cancel()
	o := Outcome{JobID: jobIDOf(d.Body), MessageID: d.MessageId}
	if o.JobID != "" {
		_, err := r.store.Requeue(ctx, o.JobID, traceHeaders(d.Headers))
		switch {
		case err == nil:
			o.Action = Requeued
		case errors.Is(err, jobstore.ErrNotInDLQState):
			o.Action = Skipped
			if j, err := r.store.Get(ctx, o.JobID); err == nil {
				o.Status = j.Status
			}
		case errors.Is(err, jobstore.ErrNotFound):
			if err := r.republish(ctx, d); err != nil {
				return fmt.Errorf("job %s: %w", o.JobID, err)
			}
			o.Action = Republished
		default:
			return err
		}
	} else {
		if err := r.republish(ctx, d); err != nil {
			return fmt.Errorf("message %s: %w", oneLine(d.MessageId, 64), err)
		}
		o.Action = Republished
	}
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("ack DLQ message (it stays in the DLQ; running again is safe): %w", err)
	}
	return r.done(o)
}

func (r *requeuer) republish(ctx context.Context, d amqp.Delivery) error {
	if !r.confirming {
		if err := r.ch.Confirm(false); err != nil {
			return fmt.Errorf("confirm mode: %w", err)
		}
		r.confirming = true
	}
	return publishRaw(ctx, r.ch, r.store.Kind(), d)
}

// done counts an outcome and reports it.
func (r *requeuer) done(o Outcome) error {
	if o.Action == Skipped {
		r.res.Skipped++
	} else {
		r.res.Requeued++
	}
	if r.report == nil {
		return nil
	}
	return r.report(o)
}

// fromDatabase requeues a failed job that has no message in the DLQ (it was consumed, or
// lost).
func (r *requeuer) fromDatabase(ctx context.Context, id string) error {
	j, err := r.store.Get(ctx, id)
	if errors.Is(err, jobstore.ErrNotFound) {
		return &NotRequeuedError{JobID: id}
	}
	if err != nil {
		return err
	}
	if j.Status == job.StatusFailed {
		_, err := r.store.Requeue(ctx, id, nil)
		if err == nil {
			return r.done(Outcome{Action: RequeuedFromDatabase, JobID: id})
		}
		if !errors.Is(err, jobstore.ErrNotInDLQState) && !errors.Is(err, jobstore.ErrNotFound) {
			return err
		}
		// It changed under us: say what it is now.
		j, err = r.store.Get(ctx, id)
		if errors.Is(err, jobstore.ErrNotFound) {
			return &NotRequeuedError{JobID: id}
		}
		if err != nil {
			return err
		}
	}
	return &NotRequeuedError{JobID: id, Status: j.Status}
}
