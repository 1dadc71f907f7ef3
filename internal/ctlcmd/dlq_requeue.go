package ctlcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

const (
	// maxScan caps how many messages `dlq requeue JOB_ID` looks through: the ones that do not
	// match stay unacked, held by this command, until it ends.
	maxScan = 10000
	// stepTimeout bounds the handling of one message. It runs on a context that an interrupt
	// does not cancel, so a message is always either fully requeued or left in the DLQ.
	stepTimeout = 30 * time.Second
)

func dlqRequeueCommand() command {
	return command{
		name:     "dlq requeue",
		synopsis: "(--all | JOB_ID)",
		short:    "Send dead-lettered jobs back to the generate queue.",
		help: `
For each message taken off the dead-letter queue (every one with --all, those of JOB_ID
otherwise):

  - the body names a job that is failed: the job gets a fresh attempt budget and its
    generate message is written to the outbox in the same transaction. The outbox relays of
    the running api and worker processes publish it: careeropsctl does not, so the job stays
    pending until one of them runs. Prints "requeued JOB".
  - the job is not failed (completed, pending, ...): the message is dropped. Prints
    "skipped JOB (status is STATUS)".
  - the job has no row, or the body is not a job: the message is published again as it was,
    minus its death headers, to cover-letter.generate (with a publisher confirm). Prints
    "requeued JOB (no job row; republished the message)" or "requeued message ID (not a
    job; republished the message)".

Each DLQ message is acknowledged only once its outcome is stored, so an interrupted or
failed run loses nothing; running it again is safe. Ends with "requeued N, skipped M".

With JOB_ID, a failed job whose DLQ message is gone (already consumed) is requeued from the
database: "requeued JOB (no DLQ message; requeued from the database)". A JOB_ID that is
neither in the DLQ nor a failed job is an error. --all only looks at the messages present
when it starts. Needs DATABASE_URL and RABBITMQ_URL.`,
		run: runDLQRequeue,
	}
}

func runDLQRequeue(ctx context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	all := fs.Bool("all", false, "requeue every message in the DLQ")
	rest, help, err := c.parse(e, fs, args)
	if help || err != nil {
		return err
	}
	var target string
	switch {
	case len(rest) > 1:
		return usageErrorf("%s: unexpected argument %q (see careeropsctl %s --help)", c.name, rest[1], c.name)
	case *all && len(rest) == 1:
		return usageErrorf("%s: give --all or a JOB_ID, not both", c.name)
	case !*all && len(rest) == 0:
		return usageErrorf("%s: give --all or a JOB_ID (see careeropsctl %s --help)", c.name, c.name)
	case len(rest) == 1:
		target = rest[0]
		if !job.ValidID(target) {
			return usageErrorf("%s: %q is not a job id", c.name, target)
		}
	}
	cfg, err := e.config(needDatabase | needBroker)
	if err != nil {
		return err
	}
	pool, err := database.Connect(ctx, cfg.DatabaseURL, 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := openBroker(ctx, cfg.RabbitMQURL)
	if err != nil {
		return err
	}
	defer s.close() // returns the messages not acked (other jobs') to the DLQ

	r := &requeuer{e: e, store: jobstore.New(pool), session: s}
	defer r.close()
	interrupted, err := r.drain(ctx, target)
	if err != nil {
		return fmt.Errorf("dlq requeue: %w (after requeued %d, skipped %d)", err, r.requeued, r.skipped)
	}
	if target != "" && r.matched == 0 && !interrupted {
		if err := r.requeueFromDatabase(ctx, target); err != nil {
			return fmt.Errorf("dlq requeue: %w", err)
		}
	}
	if r.seen == 0 && target == "" {
		_, err := fmt.Fprintln(e.stdout, "DLQ is empty")
		return err
	}
	suffix := ""
	if interrupted {
		suffix = " (interrupted; run it again for the rest)"
	}
	_, err = fmt.Fprintf(e.stdout, "requeued %d, skipped %d%s\n", r.requeued, r.skipped, suffix)
	return err
}

// requeuer takes messages off the DLQ and requeues them.
type requeuer struct {
	e       *env
	store   *jobstore.Store
	session *brokerSession
	pub     *amqp.Channel // confirm mode, opened on first use

	seen, matched, requeued, skipped int
}

func (r *requeuer) close() {
	if r.pub != nil {
		_ = r.pub.Close()
	}
}

// drain goes through the messages present in the DLQ when it starts (so a message that comes
// back while it runs is not handled twice), handling every one with target "" or those of
// job target. It stops early, between two messages, when ctx ends, and reports so.
func (r *requeuer) drain(ctx context.Context, target string) (interrupted bool, err error) {
	budget := -1 // unknown until the first get
	for budget != 0 {
		if ctx.Err() != nil {
			return true, nil
		}
		d, ok, err := r.session.ch.Get(job.QueueDLQ, false)
		if err != nil {
			return false, fmt.Errorf("get from %s: %w", job.QueueDLQ, err)
		}
		if !ok {
			return false, nil
		}
		if budget < 0 {
			budget = int(d.MessageCount) + 1
			if target != "" && budget > maxScan {
				fmt.Fprintf(r.e.stderr, "careeropsctl: the DLQ holds %d messages; looking at the first %d only\n", budget, maxScan)
				budget = maxScan
			}
		}
		budget--
		r.seen++
		if target != "" && jobIDOf(d.Body) != target {
			continue // stays unacked: back in the DLQ when the channel closes
		}
		r.matched++
		if err := r.handle(ctx, d); err != nil {
			return false, err
		}
	}
	return false, nil
}

// handle requeues one DLQ message and acks it once its outcome is stored.
func (r *requeuer) handle(ctx context.Context, d amqp.Delivery) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
	defer cancel()
	var line string
	id := jobIDOf(d.Body)
	if id != "" {
		_, err := r.store.Requeue(ctx, id, traceHeaders(d.Headers))
		switch {
		case err == nil:
			r.requeued++
			line = "requeued " + id
		case errors.Is(err, jobstore.ErrNotInDLQState):
			status := "unknown"
			if j, err := r.store.GetAny(ctx, id); err == nil {
				status = string(j.Status)
			}
			r.skipped++
			line = fmt.Sprintf("skipped %s (status is %s)", id, status)
		case errors.Is(err, jobstore.ErrNotFound):
			if err := r.republish(ctx, d); err != nil {
				return fmt.Errorf("job %s: %w", id, err)
			}
			r.requeued++
			line = fmt.Sprintf("requeued %s (no job row; republished the message)", id)
		default:
			return err
		}
	} else {
		if err := r.republish(ctx, d); err != nil {
			return fmt.Errorf("message %s: %w", oneLine(d.MessageId, 64), err)
		}
		r.requeued++
		line = fmt.Sprintf("requeued message %s (not a job; republished the message)", oneLine(d.MessageId, 64))
	}
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("ack DLQ message (it stays in the DLQ; running again is safe): %w", err)
	}
	_, err := fmt.Fprintln(r.e.stdout, line)
	return err
}

func (r *requeuer) republish(ctx context.Context, d amqp.Delivery) error {
	if r.pub == nil {
		ch, err := r.session.channel(ctx)
		if err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			return fmt.Errorf("confirm mode: %w", err)
		}
		r.pub = ch
	}
	return publishRaw(ctx, r.pub, d)
}

// requeueFromDatabase requeues a failed job that has no message in the DLQ (it was consumed,
// or lost).
func (r *requeuer) requeueFromDatabase(ctx context.Context, id string) error {
	j, err := r.store.GetAny(ctx, id)
	if errors.Is(err, jobstore.ErrNotFound) {
		return fmt.Errorf("job %s is neither in the DLQ nor in the database", id)
	}
	if err != nil {
		return err
	}
	if j.Status == job.StatusFailed {
		_, err = r.store.Requeue(ctx, id, nil)
		if errors.Is(err, jobstore.ErrNotInDLQState) {
			j, err = r.store.GetAny(ctx, id) // changed under us
		} else if err == nil {
			r.requeued++
			_, err = fmt.Fprintf(r.e.stdout, "requeued %s (no DLQ message; requeued from the database)\n", id)
			return err
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("job %s is not in the DLQ and its status is %s, not failed: nothing to requeue", id, j.Status)
}
