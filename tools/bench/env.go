package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/pause"
	"github.com/careerops/jobs/internal/testkit"
)

// jwtSecret signs the bench users' tokens; the api gets it as JWT_SECRET.
const jwtSecret = "careerops-bench-secret-0123456789abcdef"

// world is what every phase shares: a fresh database migrated with database.Migrate, a fresh
// RabbitMQ virtual host, users with tokens, and the pids of the shared servers (for their CPU).
type world struct {
	cfg      Config
	name     string // database and vhost name
	dbURL    string
	amqpURL  string
	pool     *pgxpool.Pool // the bench's own small pool: bookkeeping queries only
	amqpConn *amqp.Connection
	mgmt     *testkit.RabbitAdmin
	userIDs  []int64
	tokens   []string
	pgPID    int // postmaster of the server at 127.0.0.1:5432
	mqPID    int // RabbitMQ's beam.smp
	versions string
	ours     jobsDB // the database above, as the runs read it
	// river is the River peer's own database on the same server (BENCH_PHASES river only).
	river *riverWorld
}

func newWorld(ctx context.Context, cfg Config) (*world, error) {
	w := &world{cfg: cfg, name: "careerops_bench_" + testkit.RandomHex(4)}
	err := w.openDatabase(ctx)
	if err != nil {
		return w, err
	}
	if err := w.openBroker(ctx); err != nil {
		return w, err
	}
	if err := w.addUsers(ctx); err != nil {
		return w, err
	}
	w.ours = jobsDB{pool: w.pool, reset: w.reset,
		finals: `SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM cover_letter_jobs`,
		times:  `SELECT created_at, started_at, completed_at FROM cover_letter_jobs WHERE status = 'completed'`}
	if cfg.phase("river") {
		if w.river, err = newRiverWorld(ctx, cfg, w.name+"_river", w.userIDs); err != nil {
			return w, err
		}
	}
	w.pgPID = postmasterPID(ctx, w.pool)
	if w.mqPID, err = nodePID(ctx, w.mgmt); err != nil {
		return w, err
	}
	var pgVersion string
	_ = w.pool.QueryRow(ctx, `SHOW server_version`).Scan(&pgVersion) // only printed
	mqVersion, _ := w.mgmt.Version(ctx)                              // only printed
	w.versions = fmt.Sprintf("PostgreSQL %s, RabbitMQ %s", strings.Fields(pgVersion + " ?")[0], mqVersion)
	return w, nil
}

// nodePID is the pid of RabbitMQ's node, whose CPU every run counts. A management plugin just
// enabled reports it only once its first statistics are in: it waits up to 15 s for them.
func nodePID(ctx context.Context, mgmt *testkit.RabbitAdmin) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		pid, err := mgmt.NodePID(ctx)
		if err == nil {
			return pid, nil
		}
		if pause.For(ctx, 250*time.Millisecond) != nil {
			return 0, fmt.Errorf("RabbitMQ's pid, for its CPU: %w", err)
		}
	}
}

// openDatabase creates and migrates the bench database and opens the bench's own pool.
func (w *world) openDatabase(ctx context.Context) error {
	var err error
	if w.dbURL, err = testkit.WithDatabase(w.cfg.AdminDatabaseURL, w.name); err != nil {
		return fmt.Errorf("BENCH_DATABASE_URL: %w", err)
	}
	if err := database.EnsureDatabase(ctx, w.dbURL); err != nil {
		return err
	}
	if _, err := database.Migrate(ctx, w.dbURL); err != nil {
		return err
	}
	w.pool, err = benchPool(ctx, w.dbURL)
	return err
}

// benchPool is the bench's own small pool on dbURL: its connections say who they are, so that
// their CPU is not the system's.
func benchPool(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	benchURL := dbURL + "?application_name=" + benchAppName
	if strings.Contains(dbURL, "?") {
		benchURL = dbURL + "&application_name=" + benchAppName
	}
	return database.Connect(ctx, benchURL, 4, &queryCounter{})
}

// queryCounter counts the queries of the bench's own pool: each is a transaction of the
// database that xacts must not count.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (*queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// xacts counts the transactions that pool's database has run (committed or rolled back), but
// the bench's own on pool (a bench pool); -1 if unknown. PostgreSQL's statistics lag by up to a
// second, so a difference of two counts is for a window of several seconds.
func xacts(ctx context.Context, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		return -1
	}
	if c, ok := pool.Config().ConnConfig.Tracer.(*queryCounter); ok {
		n -= c.n.Load()
	}
	return n
}

// openBroker creates the bench vhost, connects to it and declares the real topology.
func (w *world) openBroker(ctx context.Context) error {
	var err error
	if w.mgmt, err = testkit.NewRabbitAdmin(w.cfg.ManagementURL, w.cfg.AMQPURL); err != nil {
		return fmt.Errorf("BENCH_RABBITMQ_URL: %w", err)
	}
	if err := w.mgmt.CreateVhost(ctx, w.name); err != nil {
		return fmt.Errorf("create vhost %s (management API %s): %w", w.name, w.cfg.ManagementURL, err)
	}
	u, err := url.Parse(w.cfg.AMQPURL)
	if err != nil {
		return fmt.Errorf("BENCH_RABBITMQ_URL: %w", err)
	}
	u.Path, u.RawPath = "/"+w.name, ""
	w.amqpURL = u.String()
	if w.amqpConn, err = amqp.DialConfig(w.amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Properties: amqp.Table{"connection_name": "careerops-bench"}}); err != nil {
		return fmt.Errorf("dial RabbitMQ: %w", err)
	}
	ch, err := w.amqpConn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return broker.Declare(ch, job.Kinds()) // the real topology, as the programs declare it
}

// addUsers adds cfg.Users users with a token each.
func (w *world) addUsers(ctx context.Context) error {
	store := jobstore.New(w.pool)
	for i := range w.cfg.Users {
		id, err := store.AddUser(ctx, fmt.Sprintf("bench-%d@%s.example", i, w.name))
		if err != nil {
			return err
		}
		token, err := auth.Issue([]byte(jwtSecret), id, 6*time.Hour, time.Now())
		if err != nil {
			return err
		}
		w.userIDs = append(w.userIDs, id)
		w.tokens = append(w.tokens, token)
	}
	return nil
}

// postmasterPID reads postmaster.pid in the server's data directory (0 if not readable: the
// server is elsewhere or not ours to read).
func postmasterPID(ctx context.Context, pool *pgxpool.Pool) int {
	var dir string
	if err := pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// benchAppName is the application_name of the bench's own PostgreSQL connections.
const benchAppName = "careerops-bench"

// postgresPIDs are the server processes that work for the system under test: the backends of
// pool's database but the bench's own, and the shared background processes (WAL writer,
// checkpointer, …); not the backends of other databases, whose CPU is counted as "other".
func postgresPIDs(pool *pgxpool.Pool) []int {
	return backendPIDs(pool, `(datname = current_database() AND application_name <> '`+benchAppName+`')
		OR (backend_type <> 'client backend' AND datname IS NULL)`)
}

// benchPIDs are the bench process and its own PostgreSQL backends in pool's database.
func benchPIDs(pool *pgxpool.Pool) []int {
	return append([]int{self}, backendPIDs(pool, `datname = current_database() AND application_name = '`+benchAppName+`'`)...)
}

func backendPIDs(pool *pgxpool.Pool, where string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE `+where)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// close drops the database and the vhost unless cfg.Keep.
func (w *world) close() {
	if w.amqpConn != nil {
		_ = w.amqpConn.Close()
	}
	if w.pool != nil {
		w.pool.Close()
	}
	w.river.close(w.cfg)
	if w.cfg.Keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w.mgmt != nil {
		_ = w.mgmt.DeleteVhost(ctx, w.name) // best effort: the run is over
	}
	_ = testkit.DropDatabase(ctx, w.cfg.AdminDatabaseURL, w.name) // best effort too
}

// reset empties the job and outbox tables and the queues between runs, so that each run
// starts from the same state.
func (w *world) reset(ctx context.Context) error {
	if _, err := w.pool.Exec(ctx, `TRUNCATE cover_letter_jobs, outbox_messages`); err != nil {
		return fmt.Errorf("reset tables: %w", err)
	}
	ch, err := w.amqpConn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, q := range broker.Topology(job.Kinds()) {
		if _, err := ch.QueuePurge(q.Name, false); err != nil {
			return fmt.Errorf("purge %s: %w", q.Name, err)
		}
	}
	return nil
}

// queueDepth is the number of ready messages in queue.
func (w *world) queueDepth(queue string) (int, error) {
	ch, err := w.amqpConn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}
