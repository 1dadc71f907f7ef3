package ctlcmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

func jobsCommand() command {
	return command{
		name:     "jobs",
		synopsis: "[--json]",
		short:    "Count the jobs of every kind by status.",
		help: `
Prints KIND  PENDING  PROCESSING  COMPLETED  FAILED  CANCELLED, a row per job kind (cover
letters first; a large table's completed and cancelled cover letters are estimates, marked
~), or one JSON object per kind with --json. Needs DATABASE_URL.`,
		run: runJobs,
	}
}

// kindCounts are the jobs of one kind by status.
type kindCounts struct {
	Kind      string             `json:"kind"`
	Counts    map[job.Status]int `json:"counts"`
	Estimated []job.Status       `json:"estimated,omitempty"`
}

func runJobs(ctx context.Context, e *env, c command, args []string) error {
	asJSON, pool, err := c.listing(ctx, e, flag.NewFlagSet(c.name, flag.ContinueOnError), args, "kind")
	if pool == nil || err != nil {
		return err
	}
	defer pool.Close()
	store := jobstore.New(pool)
	letters, err := store.CountByStatus(ctx)
	if err != nil {
		return err
	}
	others, err := store.CountKinds(ctx)
	if err != nil {
		return err
	}
	rows := []kindCounts{{Kind: job.QueueGenerate, Counts: letters.Counts, Estimated: letters.Estimated}}
	for _, k := range job.Kinds()[1:] {
		rows = append(rows, kindCounts{Kind: k, Counts: others[k]})
		delete(others, k)
	}
	for k, counts := range others { // kinds this build does not declare (older or newer ones)
		rows = append(rows, kindCounts{Kind: k, Counts: counts})
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tPENDING\tPROCESSING\tCOMPLETED\tFAILED\tCANCELLED")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t", r.Kind)
		for _, s := range job.Statuses() {
			mark := ""
			if slices.Contains(r.Estimated, s) {
				mark = "~"
			}
			fmt.Fprintf(w, "%s%d\t", mark, r.Counts[s])
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
