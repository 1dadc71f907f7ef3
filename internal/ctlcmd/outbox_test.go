package ctlcmd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/ctlcmd"
	"github.com/careerops/jobs/internal/testkit"
)

// database gives the test a migrated database of its own: the variables careeropsctl needs
// to use it, and a pool on it.
func database(t *testing.T) (map[string]string, *pgxpool.Pool) {
	t.Helper()
	dbURL := testkit.NewDatabaseURL(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return map[string]string{"DATABASE_URL": dbURL}, pool
}

// Parked outbox messages are visible to an operator and can be replayed, one or all.
func TestOutboxListAndReplayParkedMessages(t *testing.T) {
	t.Parallel()
	vars, pool := database(t)
	var first int64
	err := pool.QueryRow(context.Background(), `
		INSERT INTO outbox_messages (routing_key, message_id, body, publish_attempts, last_error, parked_at)
		VALUES ('cover-letter.completed', 'a/completed', '{}', 10, 'broker: message nacked', now()),
		       ('cover-letter.generate.dlq', 'b/dead', '{}', 1, 'refused: headers too large', now()),
		       ('cover-letter.generate', 'c/0', '{}', 0, NULL, NULL)
		RETURNING id`).Scan(&first)
	if err != nil {
		t.Fatal(err)
	}

	list := run(t, vars, "outbox", "list")
	if list.err != nil || !strings.Contains(list.stdout, "a/completed") || !strings.Contains(list.stdout, "b/dead") ||
		strings.Contains(list.stdout, "c/0") || !strings.Contains(list.stderr, "2 parked") {
		t.Fatalf("outbox list = %q, stderr %q, %v", list.stdout, list.stderr, list.err)
	}
	if js := run(t, vars, "outbox", "list", "--json"); js.err != nil || strings.Count(js.stdout, "\n") != 2 || !strings.Contains(js.stdout, `"MessageID":"a/completed"`) {
		t.Fatalf("outbox list --json = %q, %v", js.stdout, js.err)
	}
	if one := run(t, vars, "outbox", "replay", "999999"); one.err == nil || !strings.Contains(one.err.Error(), "no parked message") {
		t.Fatalf("replay of an unknown id: %v", one.err)
	}
	if bad := run(t, vars, "outbox", "replay"); bad.err == nil {
		t.Fatal("replay without --all or an id was accepted")
	}
	if all := run(t, vars, "outbox", "replay", "--all"); all.err != nil || all.stdout != "replayed 2\n" {
		t.Fatalf("replay --all = %q, %v", all.stdout, all.err)
	}
	var parked int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages WHERE parked_at IS NOT NULL`).Scan(&parked); err != nil || parked != 0 {
		t.Fatalf("%d still parked (%v)", parked, err)
	}
}

// careeropsctl jobs counts every kind's jobs by status: cover letters from their table, the
// other kinds from the shared one, kinds this build does not know included.
func TestJobsCountsEveryKind(t *testing.T) {
	t.Parallel()
	vars, pool := database(t)
	_, err := pool.Exec(context.Background(), `
		WITH u AS (INSERT INTO users (email) VALUES ('jobs@example.com') RETURNING id)
		INSERT INTO jobs (job_id, user_id, kind, status, args)
		SELECT j, u.id, k, s, '{}' FROM u, (VALUES ('e1', 'notifications.email', 'failed'), ('e2', 'notifications.email', 'failed'),
		                                           ('o1', 'old.kind', 'pending')) AS v(j, k, s)`)
	if err != nil {
		t.Fatal(err)
	}
	testkit.InsertJob(t, pool, "letter-1", "completed")
	out := run(t, vars, "jobs")
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	if out.err != nil || len(lines) != 7 || !strings.HasPrefix(lines[1], "cover-letter.generate") ||
		strings.Join(strings.Fields(lines[2]), " ") != "notifications.email 0 0 0 2 0" ||
		strings.Join(strings.Fields(lines[3]), " ") != "maintenance.retention 0 0 0 0 0" ||
		strings.Join(strings.Fields(lines[4]), " ") != "analytics.process 0 0 0 0 0" ||
		strings.Join(strings.Fields(lines[5]), " ") != "data.export 0 0 0 0 0" || !strings.HasPrefix(lines[6], "old.kind") {
		t.Fatalf("jobs = %q, %v", out.stdout, out.err)
	}
	if js := run(t, vars, "jobs", "--json"); js.err != nil || !strings.Contains(js.stdout, `"kind":"cover-letter.generate","counts":{"cancelled":0,"completed":1`) {
		t.Fatalf("jobs --json = %q, %v", js.stdout, js.err)
	}
}

// careeropsctl enqueue puts a job of any kind in the outbox, its arguments checked as the
// kind's worker checks them; with --id it is idempotent.
func TestEnqueueAnyKind(t *testing.T) {
	t.Parallel()
	vars, pool := database(t)
	var user int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (email) VALUES ('enq@example.com') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	u := fmt.Sprint(user)
	for range 2 {
		if out := run(t, vars, "enqueue", "notifications.email", "--user", u, "--id", "mail-1",
			"--args", `{"about":"letter-1","outcome":"completed"}`); out.err != nil || strings.TrimSpace(out.stdout) != "mail-1" {
			t.Fatalf("enqueue = %q, %v", out.stdout, out.err)
		}
	}
	var jobs, messages int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM jobs WHERE job_id = 'mail-1' AND kind = 'notifications.email'),
		(SELECT count(*) FROM outbox_messages WHERE routing_key = 'notifications.email')`).Scan(&jobs, &messages); err != nil || jobs != 1 || messages != 1 {
		t.Fatalf("%d jobs, %d messages after two enqueues of one id, %v", jobs, messages, err)
	}
	for _, bad := range [][]string{
		{"enqueue", "notifications.email", "--user", u, "--args", `{"about":"letter-1","outcome":"maybe"}`},
		{"enqueue", "no.such-kind", "--user", u},
		{"enqueue", "notifications.email", "--user", "424242", "--args", `{"about":"x","outcome":"failed"}`},
		{"enqueue", "notifications.email"},
	} {
		if out := run(t, vars, bad...); !errors.Is(out.err, ctlcmd.ErrUsage) {
			t.Errorf("%v = %v, want a usage error", bad, out.err)
		}
	}
}
