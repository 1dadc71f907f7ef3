package ctlcmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/careerops/jobs/internal/dlq"
)

func dlqListCommand() command {
	return command{
		name:     "dlq list",
		synopsis: "[--limit N] [--json]",
		short:    "Show the messages in the dead-letter queue without removing them.",
		help: `
Prints a table: JOB_ID (the body's jobId, "-" if the body is not a job), REASON (the
worker's x-careerops-death-reason, or RabbitMQ's x-death reason such as delivery_limit),
ERROR (x-careerops-death-error, cut to 80 characters) and MESSAGE_ID; "DLQ is empty" when
it is. With --json, one object per line: {"jobId","reason","error","messageId"}, the error
in full.

The messages are read with basic.get and never acknowledged: they return to the queue, in
order, when the command ends. Needs RABBITMQ_URL.`,
		run: runDLQList,
	}
}

// jsonEntry is one listed message, as --json prints it.
type jsonEntry struct {
	JobID     string `json:"jobId"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
	MessageID string `json:"messageId"`
}

func runDLQList(ctx context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	limit := fs.Int("limit", 100, fmt.Sprintf("show at most N messages, 1..%d", dlq.MaxList))
	asJSON := fs.Bool("json", false, "print one JSON object per line instead of a table")
	kindName := kindFlag(fs)
	if help, err := c.parseNoArgs(e, fs, args); help || err != nil {
		return err
	}
	if *limit < 1 || *limit > dlq.MaxList {
		return usageErrorf("%s: --limit must be 1..%d, got %d", c.name, dlq.MaxList, *limit)
	}
	cfg, err := e.config(needBroker)
	if err != nil {
		return err
	}
	s, err := openBroker(ctx, cfg.RabbitMQURL)
	if err != nil {
		return err
	}
	defer s.close() // returns every message got to the DLQ

	entries, more, err := dlq.List(ctx, s.ch, *kindName, *limit)
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}

	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, en := range entries {
			if err := enc.Encode(jsonEntry{JobID: en.JobID, Reason: en.Reason, Error: en.Error, MessageID: en.MessageID}); err != nil {
				return err
			}
		}
	} else if err := printTable(e, entries); err != nil {
		return err
	}
	if more > 0 {
		fmt.Fprintf(e.stderr, "careeropsctl: showing the first %d messages; %d more in the DLQ (see --limit)\n", len(entries), more)
	}
	return nil
}

func printTable(e *env, entries []dlq.Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(e.stdout, "DLQ is empty")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB_ID\tREASON\tERROR\tMESSAGE_ID")
	for _, en := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", oneLine(en.JobID, 0), oneLine(en.Reason, 40), oneLine(en.Error, 80), oneLine(en.MessageID, 0))
	}
	return tw.Flush()
}
