package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// build is a set of programs built once per test run, into a temporary directory that
// TestMain removes.
type build struct {
	once sync.Once
	dir  string
	err  error
}

// get builds pkgs with flags the first time and returns the directory.
func (b *build) get(t *testing.T, pattern string, flags []string, pkgs ...string) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", pattern); b.err == nil {
			b.err = testkit.Build(context.Background(), ".", b.dir, flags, pkgs...)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// raceBuild and plainBuild are the test run's builds: with the race detector, and without it,
// as deployed, for measurements of memory.
var raceBuild, plainBuild build

// plainBinaries builds the api without the race detector, as it is deployed.
func plainBinaries(t *testing.T) string {
	t.Helper()
	return plainBuild.get(t, "careerops-bin-plain-", nil, "../../cmd/api")
}

// binaries builds the four programs once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	return raceBuild.get(t, "careerops-bin-", []string{"-race"}, "../../cmd/...")
}

// programEnv is the environment of the programs run as processes: the test's database and
// vhost, fakeopenai at llmAddr, the api on apiAddr, the worker's admin on adminAddr, then extra.
func programEnv(dbURL, amqpURL, llmAddr, apiAddr, adminAddr string, extra ...string) []string {
	return testkit.ChildEnv(append([]string{
		"DATABASE_URL=" + dbURL, "RABBITMQ_URL=" + amqpURL, "JWT_SECRET=" + jwtSecret,
		"OPENAI_API_KEY=sk-test", "OPENAI_BASE_URL=http://" + llmAddr + "/v1", "OPENAI_MODEL=fake-gpt",
		"HTTP_ADDR=" + apiAddr, "ADMIN_ADDR=" + adminAddr,
	}, extra...)...)
}

// startProgram starts bin/name with env, its output to out (nil: discarded), and SIGTERMs it
// and waits for it when the test ends.
func startProgram(t *testing.T, bin string, env []string, out io.Writer, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // SIGTERM flushes what the program still buffers
		_ = cmd.Process.Signal(syscall.SIGTERM) // it may have ended already
		_ = cmd.Wait()                          // its exit is not what this test checks
	})
	return cmd
}

// userToken adds a user in SQL and returns a token for it.
func userToken(t *testing.T, dbURL, email string) string {
	t.Helper()
	conn, err := pgxConnect(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var userID int64
	if err := conn.QueryRow(context.Background(), `INSERT INTO users (email) VALUES ($1) RETURNING id`, email).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	return issue(t, userID)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestProgramsHelpFlagsAndConfigErrors: --help exits 0 and documents the settings; a bad flag
// or bad configuration exits non-zero with one clear line.
func TestProgramsHelpFlagsAndConfigErrors(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		want     string // in stdout for 0, in the one stderr line otherwise
	}{
		{"api help", []string{"api", "--help"}, nil, 0, "DATABASE_URL"},
		{"worker help", []string{"worker", "-h"}, nil, 0, "WORKER_CONCURRENCY"},
		{"ctl help", []string{"careeropsctl", "--help"}, nil, 0, "dlq requeue"},
		{"fakeopenai help", []string{"fakeopenai", "--help"}, nil, 0, "-fail-rate"},
		{"api bad flag", []string{"api", "--port=1"}, nil, 2, "flag provided but not defined"},
		{"worker bad flag", []string{"worker", "--nope"}, nil, 2, "flag provided but not defined"},
		{"ctl unknown command", []string{"careeropsctl", "frobnicate"}, nil, 2, "frobnicate"},
		{"fakeopenai bad rate", []string{"fakeopenai", "--fail-rate=2"}, nil, 1, "fail rate"},
		{"api without config", []string{"api"}, nil, 1, "DATABASE_URL"},
		{"api short secret", []string{"api"}, []string{"DATABASE_URL=postgres://x", "RABBITMQ_URL=amqp://x", "JWT_SECRET=short"}, 1, "JWT_SECRET must be at least 32 bytes"},
		{"worker bad concurrency", []string{"worker"}, []string{"DATABASE_URL=postgres://x", "RABBITMQ_URL=amqp://x", "OPENAI_API_KEY=k", "WORKER_CONCURRENCY=0"}, 1, "WORKER_CONCURRENCY"},
		{"worker bad duration", []string{"worker"}, []string{"DATABASE_URL=postgres://x", "RABBITMQ_URL=amqp://x", "OPENAI_API_KEY=k", "LLM_TIMEOUT=soon"}, 1, "LLM_TIMEOUT"},
		{"worker secret never echoed", []string{"worker"}, []string{"DATABASE_URL=postgres://u:hunter2secret@127.0.0.1:1/db", "RABBITMQ_URL=amqp://x", "OPENAI_API_KEY=sk-hunter2"}, 1, "database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(filepath.Join(bin, tt.args[0]), tt.args[1:]...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			if tt.wantCode == 0 {
				if !strings.Contains(stdout.String(), tt.want) {
					t.Fatalf("help lacks %q:\n%s", tt.want, stdout.String())
				}
				return
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tt.want) || strings.Contains(stderr.String(), "hunter2") || strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("stderr last line %q, want it to mention %q (and no secret, no stack):\n%s", last, tt.want, stderr.String())
			}
		})
	}
}

// TestProgramsExitZeroOnSIGTERM runs the real binaries against the real services, sends a job
// through them, then SIGTERMs each and expects a clean exit 0.
func TestProgramsExitZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	dbURL, amqpURL := testkit.NewDatabaseURL(t), testkit.NewVhostURL(t)
	llmAddr, apiAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := programEnv(dbURL, amqpURL, llmAddr, apiAddr, adminAddr)
	start := func(name string, args ...string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = env
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, logs
	}
	run := func(args ...string) string {
		cmd := exec.Command(filepath.Join(bin, "careeropsctl"), args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("careeropsctl %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	fake, fakeLogs := start("fakeopenai", "--addr", llmAddr, "--latency", "300ms")
	api, apiLogs := start("api")
	worker, workerLogs := start("worker")
	waitReady(t, "http://"+apiAddr+"/readyz")
	waitReady(t, "http://"+adminAddr+"/readyz")

	id := run("user", "add", "--email", "proc@example.com")
	token := run("token", "--user", id)
	b := &bundle{t: t, apiURL: "http://" + apiAddr}
	jobID := b.submit(token, "Welder at Springfield Plant", "MIG, TIG", "")
	// SIGTERM the worker while the LLM call is in flight: it must finish the job, then exit 0.
	testkit.Eventually(t, 10*time.Second, func() bool { return strings.Contains(workerLogs.String(), "worker: job started") },
		func() string { return "the worker starting the job:\n" + workerLogs.String() })
	for _, p := range []struct {
		name string
		cmd  *exec.Cmd
		logs *syncBuffer
	}{{"worker", worker, workerLogs}, {"api", api, apiLogs}, {"fakeopenai", fake, fakeLogs}} {
		if p.name == "api" { // a connection that never sends a request holds the exit at most until the read timeout (10 s)
			silent, err := net.Dial("tcp", apiAddr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { silent.Close() })
			time.Sleep(100 * time.Millisecond)
		}
		stopping := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if took := time.Since(stopping); took > 12*time.Second {
				t.Fatalf("%s took %s to exit after SIGTERM", p.name, took)
			}
			if err != nil {
				t.Fatalf("%s exited with %v after SIGTERM:\n%s", p.name, err, p.logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not exit after SIGTERM", p.name)
		}
		// Every log line is JSON.
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		for sc.Scan() {
			if line := sc.Text(); !strings.HasPrefix(line, "{") {
				t.Fatalf("%s wrote a non-JSON log line: %s", p.name, line)
			}
		}
	}
	pool, err := pgxConnect(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	var status string
	if err := pool.QueryRow(context.Background(), `SELECT status FROM cover_letter_jobs WHERE job_id = $1`, jobID).Scan(&status); err != nil || status != "completed" {
		t.Fatalf("job in flight at SIGTERM ended %q (%v)\n%s", status, err, workerLogs.String())
	}
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoSecretInLogsOrErrors runs the real programs at debug level with a database password,
// a JWT secret and an API key, sends good and bad traffic (forged tokens, an LLM that refuses
// the key, bad bodies), and greps every log line and every error body for the secrets and the
// user's bearer token.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	const (
		dbPassword = "db-pass-s3cret-4f9a"
		apiKey     = "sk-live-s3cret-key-77c1"
	)
	secret := "jwt-s3cret-" + strings.Repeat("q", 32)
	dbURL := strings.Replace(testkit.NewDatabaseURL(t), "postgres@", "postgres:"+dbPassword+"@", 1) // trust auth ignores it
	amqpURL := testkit.NewVhostURL(t)
	llmAddr, apiAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := programEnv(dbURL, amqpURL, llmAddr, apiAddr, adminAddr, // later values win: the secrets
		"JWT_SECRET="+secret, "OPENAI_API_KEY="+apiKey, "LOG_LEVEL=debug", "WORKER_RETRY_BASE_DELAY=50ms",
		"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false")
	logs := &syncBuffer{}
	for _, p := range [][]string{{"fakeopenai", "--addr", llmAddr}, {"api"}, {"worker"}} {
		startProgram(t, bin, env, logs, p[0], p[1:]...)
	}
	waitReady(t, "http://"+apiAddr+"/readyz")
	waitReady(t, "http://"+adminAddr+"/readyz")
	ctl := func(args ...string) string {
		cmd := exec.Command(filepath.Join(bin, "careeropsctl"), args...)
		cmd.Env = env
		cmd.Stderr = logs // its output is the token, by design; its diagnostics must be clean
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("careeropsctl %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	token := ctl("token", "--user", ctl("user", "add", "--email", "s@example.com"))

	b := &bundle{t: t, apiURL: "http://" + apiAddr}
	var bodies strings.Builder
	record := func(r response) { bodies.Write(r.Body); bodies.WriteString("\n") }
	ok := b.submit(token, "Cashier at Kwik-E-Mart", "Night shifts", "")
	refused := b.submit(token, "Key refused [[fakeopenai:status=401]]", "CV", "")
	record(b.do("POST", "/api/cover-letter", token+"x", jobBody("x", "y", "")))
	record(b.do("POST", "/api/cover-letter", "", jobBody("x", "y", "")))
	record(b.do("POST", "/api/cover-letter", token, []byte(`{"jobDescription":`)))
	record(b.do("GET", "/api/cover-letter/status/nope", token, nil))
	for _, id := range []string{ok, refused} {
		b.waitStatus(token, id, 30*time.Second, job.StatusCompleted, job.StatusFailed)
		r := b.do("GET", "/api/cover-letter/status/"+id, token, nil)
		record(r)
	}
	// Bad configuration must not echo secrets either.
	bad := exec.Command(filepath.Join(bin, "worker"))
	bad.Env = append(append([]string{}, env...), "DATABASE_URL=postgres://postgres:"+dbPassword+"@127.0.0.1:1/x", "ADMIN_ADDR=127.0.0.1:0")
	out, _ := bad.CombinedOutput()
	logs.Write(out) //nolint:errcheck // in memory

	all := logs.String() + bodies.String()
	if !strings.Contains(all, "worker: job completed") || !strings.Contains(all, "worker: job failed") {
		t.Fatalf("the run did not do what the test needs:\n%s", all)
	}
	for name, s := range map[string]string{"database password": dbPassword, "JWT secret": secret, "API key": apiKey, "bearer token": token} {
		if strings.Contains(all, s) {
			i := strings.Index(all, s)
			t.Errorf("the %s appears in logs or error bodies: …%s…", name, all[max(0, i-200):min(len(all), i+len(s)+50)])
		}
	}
}

// TestAPIStopsAtOnceWithAnIdleConnection: a TCP connection that never sends a request (a
// load balancer's pre-opened connection, a port scan) does not hold the api's exit on SIGTERM.
func TestAPIStopsAtOnceWithAnIdleConnection(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.apiURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(100 * time.Millisecond) // accepted by the server
	start := time.Now()
	b.stopAPI()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the api took %s to stop with one never-used connection open", took)
	}
}
