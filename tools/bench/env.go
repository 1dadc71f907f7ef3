package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/jobstore"
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
	mgmt     *mgmt
	userIDs  []int64
	tokens   []string
	pgPID    int // postmaster of the server at 127.0.0.1:5432
	mqPID    int // RabbitMQ's beam.smp
	versions string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withDatabase returns base with its database replaced by name.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func newWorld(ctx context.Context, cfg Config) (*world, error) {
	w := &world{cfg: cfg, name: "careerops_bench_" + randomHex(4)}
	var err error
	if w.dbURL, err = withDatabase(cfg.AdminDatabaseURL, w.name); err != nil {
		return nil, fmt.Errorf("BENCH_DATABASE_URL: %w", err)
	}
	if err := database.EnsureDatabase(ctx, w.dbURL); err != nil {
		return nil, err
	}
	if _, err := database.Migrate(ctx, w.dbURL); err != nil {
		return w, err
	}
	// The bench's own connections say who they are, so that their CPU is not the system's.
	benchURL := w.dbURL + "?application_name=" + benchAppName
	if strings.Contains(w.dbURL, "?") {
		benchURL = w.dbURL + "&application_name=" + benchAppName
	}
	if w.pool, err = database.Connect(ctx, benchURL, 4, nil); err != nil {
		return w, err
	}

	w.mgmt = &mgmt{base: cfg.ManagementURL, user: "guest", pass: "guest", client: &http.Client{Timeout: 10 * time.Second}}
	if u, err := url.Parse(cfg.AMQPURL); err == nil && u.User != nil {
		w.mgmt.user = u.User.Username()
		w.mgmt.pass, _ = u.User.Password()
	}
	if err := w.mgmt.createVhost(ctx, w.name); err != nil {
		return w, fmt.Errorf("create vhost %s (management API %s): %w", w.name, cfg.ManagementURL, err)
	}
	u, err := url.Parse(cfg.AMQPURL)
	if err != nil {
		return w, fmt.Errorf("BENCH_RABBITMQ_URL: %w", err)
	}
	u.Path, u.RawPath = "/"+w.name, ""
	w.amqpURL = u.String()
	if w.amqpConn, err = amqp.DialConfig(w.amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Properties: amqp.Table{"connection_name": "careerops-bench"}}); err != nil {
		return w, fmt.Errorf("dial RabbitMQ: %w", err)
	}
	ch, err := w.amqpConn.Channel()
	if err != nil {
		return w, err
	}
	defer ch.Close()
	if err := broker.Declare(ch); err != nil { // the real topology, as the programs declare it
		return w, err
	}

	store := jobstore.New(w.pool)
	for i := range cfg.Users {
		id, err := store.AddUser(ctx, fmt.Sprintf("bench-%d@%s.example", i, w.name))
		if err != nil {
			return w, err
		}
		token, err := auth.Issue([]byte(jwtSecret), id, 6*time.Hour, time.Now())
		if err != nil {
			return w, err
		}
		w.userIDs = append(w.userIDs, id)
		w.tokens = append(w.tokens, token)
	}

	w.pgPID = postmasterPID(ctx, w.pool)
	w.mqPID, _ = w.mgmt.nodePID(ctx)
	var pgVersion string
	_ = w.pool.QueryRow(ctx, `SHOW server_version`).Scan(&pgVersion)
	var overview struct {
		Version string `json:"rabbitmq_version"`
	}
	_ = w.mgmt.do(ctx, http.MethodGet, "/api/overview", nil, &overview)
	w.versions = fmt.Sprintf("PostgreSQL %s, RabbitMQ %s", strings.Fields(pgVersion + " ?")[0], overview.Version)
	return w, nil
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

// postgresPIDs are the server processes that work for the system under test: the bench
// database's backends but the bench's own, and the shared background processes (WAL writer,
// checkpointer, …); not the backends of other databases, whose CPU is counted as "other".
func (w *world) postgresPIDs() []int {
	return w.backendPIDs(`(datname = current_database() AND application_name <> '` + benchAppName + `')
		OR (backend_type <> 'client backend' AND datname IS NULL)`)
}

// benchPIDs are the bench process and its own PostgreSQL backends.
func (w *world) benchPIDs() []int {
	return append([]int{self}, w.backendPIDs(`datname = current_database() AND application_name = '`+benchAppName+`'`)...)
}

func (w *world) backendPIDs(where string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := w.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE `+where)
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
	if w.cfg.Keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w.mgmt != nil {
		_ = w.mgmt.deleteVhost(ctx, w.name)
	}
	if conn, err := pgx.Connect(ctx, w.cfg.AdminDatabaseURL); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{w.name}.Sanitize()+" WITH (FORCE)")
		_ = conn.Close(ctx)
	}
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
	for _, q := range broker.Topology() {
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

// mgmt talks to RabbitMQ's management API.
type mgmt struct {
	base, user, pass string
	client           *http.Client
}

func (m *mgmt) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(m.base, "/")+path, r)
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.user, m.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (m *mgmt) createVhost(ctx context.Context, name string) error {
	if err := m.do(ctx, http.MethodPut, "/api/vhosts/"+url.PathEscape(name), map[string]any{}, nil); err != nil {
		return err
	}
	return m.do(ctx, http.MethodPut, "/api/permissions/"+url.PathEscape(name)+"/"+url.PathEscape(m.user),
		map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
}

func (m *mgmt) deleteVhost(ctx context.Context, name string) error {
	return m.do(ctx, http.MethodDelete, "/api/vhosts/"+url.PathEscape(name), nil, nil)
}

// nodePID is the OS pid of the (first) RabbitMQ node.
func (m *mgmt) nodePID(ctx context.Context) (int, error) {
	var nodes []struct {
		OSPID string `json:"os_pid"`
	}
	if err := m.do(ctx, http.MethodGet, "/api/nodes", nil, &nodes); err != nil {
		return 0, err
	}
	if len(nodes) == 0 {
		return 0, fmt.Errorf("no RabbitMQ node")
	}
	return strconv.Atoi(nodes[0].OSPID)
}
