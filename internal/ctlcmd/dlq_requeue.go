package ctlcmd

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
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
	kindName := kindFlag(fs)
	all, id, help, err := c.parseTarget(e, fs, args, "requeue every message in the DLQ", "a JOB_ID")
	if help || err != nil {
		return err
	}
	if !all && !job.ValidID(id) {
		return usageErrorf("%s: %q is not a job id", c.name, id)
	}
	cfg, err := e.config(needDatabase | needBroker)
	if err != nil {
		return err
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	runs, err := kindRuns(pool, *kindName)
	if err != nil {
		return err
	}
	s, err := openBroker(ctx, cfg.RabbitMQURL)
	if err != nil {
		return err
	}
	defer s.close() // returns the messages not acked (other jobs') to the DLQ

	target := dlq.Target{All: all, JobID: id}
	res, err := dlq.Requeue(ctx, s.ch, runs, target, func(o dlq.Outcome) error {
		_, err := fmt.Fprintln(e.stdout, outcomeLine(o))
		return err
	})
	if res.Capped {
		fmt.Fprintf(e.stderr, "careeropsctl: the DLQ holds %d messages; looking at the first %d only\n", res.Present, dlq.MaxScan)
	}
	var notRequeued *dlq.NotRequeuedError
	switch {
	case errors.As(err, &notRequeued):
		return fmt.Errorf("dlq requeue: %w", err)
	case err != nil:
		return fmt.Errorf("dlq requeue: %w (after requeued %d, skipped %d)", err, res.Requeued, res.Skipped)
	case res.Seen == 0 && target.All:
		_, err := fmt.Fprintln(e.stdout, "DLQ is empty")
		return err
	}
	suffix := ""
	if res.Interrupted {
		suffix = " (interrupted; run it again for the rest)"
	}
	_, err = fmt.Fprintf(e.stdout, "requeued %d, skipped %d%s\n", res.Requeued, res.Skipped, suffix)
	return err
}

// outcomeLine is the line printed for one outcome of a requeue.
func outcomeLine(o dlq.Outcome) string {
	switch o.Action {
	case dlq.Requeued:
		return "requeued " + o.JobID
	case dlq.Skipped:
		return fmt.Sprintf("skipped %s (status is %s)", o.JobID, cmp.Or(string(o.Status), "unknown"))
	case dlq.Republished:
		if o.JobID == "" {
			return fmt.Sprintf("requeued message %s (not a job; republished the message)", oneLine(o.MessageID, 64))
		}
		return fmt.Sprintf("requeued %s (no job row; republished the message)", o.JobID)
	case dlq.RequeuedFromDatabase:
		return fmt.Sprintf("requeued %s (no DLQ message; requeued from the database)", o.JobID)
	}
	return fmt.Sprintf("handled %s", cmp.Or(o.JobID, oneLine(o.MessageID, 64)))
}
