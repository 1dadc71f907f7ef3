package ctlcmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/outbox"
)

func outboxListCommand() command {
	return command{
		name:     "outbox list",
		synopsis: "[--json] [--limit N]",
		short:    "List the outbox messages the relays gave up on (parked).",
		help: `
A message is parked when RabbitMQ refused it OUTBOX max attempts times (10), or at once when
it can never be published (a header frame larger than RabbitMQ accepts). Parked messages
wait for an operator: fix the cause, then "careeropsctl outbox replay". Prints
ID  ROUTING_KEY  MESSAGE_ID  ATTEMPTS  PARKED_AT  LAST_ERROR, oldest first, or one JSON
object per message with --json, then the outbox's backlog on stderr. Needs DATABASE_URL.`,
		run: runOutboxList,
	}
}

func outboxReplayCommand() command {
	return command{
		name:     "outbox replay",
		synopsis: "(--all | ID)",
		short:    "Put parked outbox messages back in line for the relays.",
		help: `
Gives a parked message (every parked message with --all) a fresh attempt budget and wakes
the relays of the running api and worker processes, which publish it. Prints "replayed N".
Needs DATABASE_URL.`,
		run: runOutboxReplay,
	}
}

func runOutboxList(ctx context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	limit := fs.Int("limit", 100, "list at most this many messages")
	asJSON, pool, err := c.listing(ctx, e, fs, args, "message")
	if pool == nil || err != nil {
		return err
	}
	defer pool.Close()
	parked, err := outbox.ListParked(ctx, pool, max(*limit, 1))
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, p := range parked {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
	} else if err := printParked(e, parked); err != nil {
		return err
	}
	b, err := outbox.ReadBacklog(ctx, pool)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stderr, "outbox: %d waiting (oldest due %s), %d parked\n", b.Waiting, b.OldestDue.Round(time.Second), b.Parked)
	return err
}

func printParked(e *env, parked []outbox.ParkedRow) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tROUTING_KEY\tMESSAGE_ID\tATTEMPTS\tPARKED_AT\tLAST_ERROR")
	for _, p := range parked {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\n", p.ID, p.RoutingKey, p.MessageID, p.Attempts,
			p.ParkedAt.UTC().Format(time.RFC3339), oneLine(p.LastError, 120))
	}
	return w.Flush()
}

func runOutboxReplay(ctx context.Context, e *env, c command, args []string) error {
	all, arg, help, err := c.parseTarget(e, flag.NewFlagSet(c.name, flag.ContinueOnError), args, "replay every parked message", "an ID")
	if help || err != nil {
		return err
	}
	var id int64
	if !all {
		if id, err = strconv.ParseInt(arg, 10, 64); err != nil || id <= 0 {
			return usageErrorf("%s: ID %q is not a message id from careeropsctl outbox list", c.name, arg)
		}
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := outbox.Replay(ctx, pool, id)
	if err != nil {
		return err
	}
	if n == 0 && id != 0 {
		return fmt.Errorf("%s: no parked message %d", c.name, id)
	}
	_, err = fmt.Fprintf(e.stdout, "replayed %d\n", n)
	return err
}

// listing parses the flags of a command that lists rows (fs's, and --json: one JSON object
// per what) and connects to DATABASE_URL; pool is nil (and err too) after --help. The caller
// closes pool.
func (c command) listing(ctx context.Context, e *env, fs *flag.FlagSet, args []string, what string) (asJSON bool, pool *pgxpool.Pool, err error) {
	jsonFlag := fs.Bool("json", false, "one JSON object per "+what)
	if help, err := c.parseNoArgs(e, fs, args); help || err != nil {
		return false, nil, err
	}
	pool, err = e.pool(ctx)
	return *jsonFlag, pool, err
}

// pool connects to DATABASE_URL.
func (e *env) pool(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := e.config(needDatabase)
	if err != nil {
		return nil, err
	}
	return database.Connect(ctx, cfg.DatabaseURL, 2, nil)
}
