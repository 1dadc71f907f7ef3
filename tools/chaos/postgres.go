package chaos

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/testkit"
)

// Postgres is the run's private PostgreSQL server: its own data directory and port, trust
// authentication on 127.0.0.1 only. The suite stops and restarts it at will.
type Postgres struct {
	Port    int
	dataDir string
	sockDir string
	binDir  string
	cred    *syscall.Credential
	server
}

// pgBinDir finds initdb and postgres: CHAOS_PG_BIN, else the newest /usr/lib/postgresql/*/bin.
func pgBinDir() (string, error) {
	if d := os.Getenv("CHAOS_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb) in /usr/lib/postgresql/*/bin; set CHAOS_PG_BIN")
}

func startPostgres(ctx context.Context, h *Harness) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Port: h.Port(), binDir: bin, server: server{h: h},
		dataDir: filepath.Join(h.Root, "pg", "data"), sockDir: filepath.Join(h.Root, "pg", "sock")}
	owner := -1
	if os.Geteuid() == 0 { // initdb and postgres refuse to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		owner = uid
	}
	for _, d := range []string{filepath.Dir(pg.dataDir), pg.sockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if owner >= 0 {
			if err := os.Chown(d, owner, int(pg.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	initdb, err := h.start(testkit.ProcSpec{
		Name: "initdb", Path: filepath.Join(bin, "initdb"), Cred: pg.cred,
		Args: []string{"-D", pg.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"},
		Env:  testkit.ChildEnv(), Dir: filepath.Dir(pg.dataDir),
	})
	if err != nil {
		return nil, err
	}
	if code, err := initdb.Wait(2 * time.Minute); err != nil || code != 0 {
		return nil, fmt.Errorf("initdb failed (exit %d, %w); see %s", code, err, initdb.Log)
	}
	// Durability against OS crashes is not under test (the suite never crashes the kernel),
	// so fsync is off for speed; every restart below is a real server stop or crash.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 300
shared_buffers = 128MB
fsync = off
full_page_writes = off
synchronous_commit = on
log_min_messages = warning
log_line_prefix = '%%m [%%p] '
`, pg.Port, pg.sockDir)
	f, err := os.OpenFile(filepath.Join(pg.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	return pg, nil
}

// URL is the URL of database db.
func (pg *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, db)
}

// Start starts the server and waits until it answers.
func (pg *Postgres) Start(ctx context.Context) error {
	return pg.start(ctx, testkit.ProcSpec{
		Name: "postgres", Path: filepath.Join(pg.binDir, "postgres"), Cred: pg.cred,
		Args: []string{"-D", pg.dataDir}, Env: testkit.ChildEnv(), Dir: filepath.Dir(pg.dataDir),
	}, 60*time.Second, 100*time.Millisecond, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, pg.URL("postgres"))
		if err == nil {
			_ = conn.Close(ctx) // it answered: that was the question
		}
		return err
	})
}

// Stop stops the server: "fast" (SIGINT: disconnect everyone, checkpoint, exit) or
// "immediate" (SIGQUIT: a crash; the next start recovers from the WAL).
func (pg *Postgres) Stop(mode string) error {
	sig := syscall.SIGINT
	if mode == "immediate" {
		sig = syscall.SIGQUIT
	}
	return pg.stop(func() error { return pg.proc.Signal(sig) })
}

// Exec runs a statement on database db.
func (pg *Postgres) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, pg.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func (pg *Postgres) shutdown() {
	pg.end(func() error { return pg.proc.Signal(syscall.SIGQUIT) }, 10*time.Second)
}
