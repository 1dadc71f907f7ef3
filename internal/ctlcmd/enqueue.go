package ctlcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
)

func enqueueCommand() command {
	return command{
		name:     "enqueue",
		synopsis: "KIND --user ID [--args JSON] [--id JOB_ID]",
		short:    "Enqueue a job of any kind through the outbox and print its id.",
		help: `
Checks ARGS as the kind's worker would, then writes the job and its message in one
transaction; the running relays publish it. With --id, a job of that id that exists already
is left as it is (the command is idempotent). Prints the job's id. Needs DATABASE_URL.`,
		run: runEnqueue,
	}
}

func runEnqueue(ctx context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	user := fs.Int64("user", 0, "the id of the user the job is for (required)")
	rawArgs := fs.String("args", "{}", "the job's arguments, a JSON object")
	id := fs.String("id", "", "the job's id (default: a new UUID)")
	pos, help, err := c.parse(e, fs, args)
	if help || err != nil {
		return err
	}
	switch {
	case len(pos) != 1 || *user <= 0:
		return usageErrorf("%s: give one KIND and --user ID (see careeropsctl %s --help)", c.name, c.name)
	case *id != "" && !job.ValidID(*id):
		return usageErrorf("%s: --id %q is not a job id (1-64 of [A-Za-z0-9._:-])", c.name, *id)
	}
	k, err := kinds.Select(kinds.All(kinds.Deps{}), pos)
	if err != nil {
		return usageErrorf("%s: %v", c.name, err)
	}
	checked, err := k[0].Decode(json.RawMessage(*rawArgs))
	if err != nil {
		return usageErrorf("%s: --args: %v", c.name, err)
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	jobID, err := jobstore.New(pool).Runs(k[0].Spec).EnqueueNow(ctx, jobstore.NewRun{ID: *id, UserID: *user, Args: checked})
	if errors.Is(err, jobstore.ErrUnknownUser) {
		return usageErrorf("%s: there is no user %d", c.name, *user)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, jobID)
	return err
}
