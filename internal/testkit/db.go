package testkit

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/database"
)

// AdminDatabaseURL is the PostgreSQL server the tests use: TEST_DATABASE_URL, or the local one.
func AdminDatabaseURL() string {
	return cmp.Or(os.Getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// NewDatabaseURL creates an empty, migrated database for this test (a clone of a template
// migrated once per schema version), drops it when the test ends, and returns its URL.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := pgx.Connect(ctx, AdminDatabaseURL())
	if err != nil {
		t.Fatalf("testkit: connect to PostgreSQL (is it running? `make services`): %v", err)
	}
	defer admin.Close(context.Background())

	template, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	name := "careerops_test_" + RandomHex(6)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())); err != nil {
		t.Fatalf("testkit: create database: %v", err)
	}
	return dropAtEnd(t, name)
}

// NewEmptyDatabaseURL names a database that does not exist yet (the test creates it, with
// `careeropsctl migrate up` say), drops it when the test ends, and returns its URL.
func NewEmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	return dropAtEnd(t, "careerops_test_"+RandomHex(6))
}

// dropAtEnd drops the database name when the test ends and returns its URL.
func dropAtEnd(t testing.TB, name string) string {
	t.Helper()
	t.Cleanup(func() {
		if err := DropDatabase(context.Background(), AdminDatabaseURL(), name); err != nil {
			t.Errorf("testkit: %v", err)
		}
	})
	dbURL, err := WithDatabase(AdminDatabaseURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dbURL
}

// NewPool is NewDatabaseURL with a pool on the new database, closed when the test ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := NewDatabaseURL(t)
	pool, err := database.Connect(context.Background(), dbURL, 8, nil)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// DropDatabase drops the database name of the server at adminURL, its sessions closed.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to drop %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}

// ensureTemplate creates and migrates the template database for the current schema once,
// serialised across test processes by an advisory lock.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	version, err := database.MigrationsVersion()
	if err != nil {
		return "", err
	}
	name := "careerops_template_" + version
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(727274)") //nolint:errcheck // unlocked on disconnect anyway

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop half-built template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	buildingURL, err := WithDatabase(AdminDatabaseURL(), building)
	if err != nil {
		return "", err
	}
	if _, err := database.Migrate(ctx, buildingURL); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("publish template: %w", err)
	}
	return name, nil
}

// Plans collects the plans PostgreSQL's auto_explain reports for the statements of an
// ExplainingPool, with what each read (EXPLAIN ANALYZE, BUFFERS).
type Plans struct {
	mu    sync.Mutex
	plans []string
}

// Take returns the plans reported since the last Take and forgets them.
func (p *Plans) Take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	taken := p.plans
	p.plans = nil
	return taken
}

// Explain makes every connection of cfg report each statement's plan, with its buffer
// counts, to p (auto_explain loaded into the session; it needs a superuser, as the tests and
// the bench connect).
func (p *Plans) Explain(cfg *pgxpool.Config) {
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.plans = append(p.plans, n.Message)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
			SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on; SET client_min_messages = log`)
		return err
	}
}

// ExplainingPool is a pool of one connection on dbURL whose every statement's plan is
// reported to plans (Plans.Explain). Closed when the test ends.
func ExplainingPool(t testing.TB, dbURL string) (*pgxpool.Pool, *Plans) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	plans := &Plans{}
	plans.Explain(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, plans
}

// PagesRead is how many pages (shared buffers hit or read) the plan's top node reported
// through its subtree: the statement's work, whatever the plan.
func PagesRead(plan string) int {
	for _, line := range strings.Split(plan, "\n") {
		_, counts, ok := strings.Cut(line, "Buffers: shared ")
		if !ok {
			continue
		}
		pages := 0
		for _, f := range strings.Fields(counts) {
			k, v, _ := strings.Cut(strings.TrimSuffix(f, ","), "=")
			if n, err := strconv.Atoi(v); err == nil && (k == "hit" || k == "read") {
				pages += n
			}
		}
		return pages
	}
	return 0
}

// listeners selects the backends of the pool's database whose last statement was a LISTEN on
// the channel $1 (pgxlisten's listener connections).
const listeners = `FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen %' || $1 || '%'`

// ListenerCount is how many connections of pool's database listen on channel.
func ListenerCount(t testing.TB, pool *pgxpool.Pool, channel string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) `+listeners, channel).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// WaitListening waits until a connection of pool's database listens on channel.
func WaitListening(t testing.TB, pool *pgxpool.Pool, channel string) {
	t.Helper()
	Eventually(t, 10*time.Second, func() bool { return ListenerCount(t, pool, channel) > 0 }, "a LISTEN on %s", channel)
}

// EndListeners ends the connections listening on channel (pg_terminate_backend) and waits
// until they are gone, as a PostgreSQL restart or a failover would.
func EndListeners(t testing.TB, pool *pgxpool.Pool, channel string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) `+listeners, channel); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 5*time.Second, func() bool { return ListenerCount(t, pool, channel) == 0 }, "the LISTEN on %s ended", channel)
}

// UndoClaim puts the processing job id of cover_letter_jobs back as it was before its claim,
// as a PostgreSQL crash that lost the claim's commit would.
func UndoClaim(t testing.TB, pool *pgxpool.Pool, id string) {
	t.Helper()
	tag, err := pool.Exec(context.Background(), `
		UPDATE cover_letter_jobs SET status = 'pending', attempts = attempts - 1, lease_token = NULL,
		    lease_owner = NULL, lease_expires_at = NULL, started_at = NULL
		WHERE job_id = $1 AND status = 'processing'`, id)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("undo the claim of %s: %v, %d rows", id, err, tag.RowsAffected())
	}
}
