package ctlcmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/schedule"
)

func schedulesCommand() command {
	return command{
		name:     "schedules",
		synopsis: "[--json]",
		short:    "Show the scheduled tasks: schedule, next run, last run and its outcome.",
		help: `
Lists the tasks the worker processes run on a schedule (as they last registered them) with
TASK  KIND  SCHEDULE  NEXT_RUN  LAST_RUN  OUTCOME  JOB_ID, or one JSON object per task with
--json. Times are UTC, by PostgreSQL's clock. OUTCOME is skipped (the task's job before was
still running), the status of the slot's job, or removed (retention deleted it); "-" before
the first run. WORKER_SCHEDULES changes a task's schedule. Needs DATABASE_URL.`,
		run: runSchedules,
	}
}

func runSchedules(ctx context.Context, e *env, c command, args []string) error {
	asJSON, pool, err := c.listing(ctx, e, flag.NewFlagSet(c.name, flag.ContinueOnError), args, "task")
	if pool == nil || err != nil {
		return err
	}
	defer pool.Close()
	tasks, err := schedule.List(ctx, pool, kinds.StoreSpec)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, st := range tasks {
			if err := enc.Encode(st.View()); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tKIND\tSCHEDULE\tNEXT_RUN\tLAST_RUN\tOUTCOME\tJOB_ID")
	for _, st := range tasks {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Task, st.Kind, st.Cron, utcOrDash(st.NextRun), utcOrDash(st.LastSlot),
			orDash(st.LastOutcome), orDash(st.LastJobID))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(tasks) == 0 {
		_, err = fmt.Fprintln(e.stderr, "schedules: none registered yet (a worker registers its tasks when it starts)")
	}
	return err
}

func utcOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
