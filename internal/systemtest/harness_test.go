// Package systemtest runs the api and the worker together, in process, against the real
// PostgreSQL and RabbitMQ (a fresh database and vhost per test) and fakeopenai, and checks the
// job path from the outside: HTTP in, letters and messages out.
package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/app"
	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/ctlcmd"
	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
)

const (
	jwtSecret = "test-secret-test-secret-test-secret-0123"
	// maxAttempts is the workers' WORKER_MAX_ATTEMPTS.
	maxAttempts = 3
)

// bundle is a running system and what a test needs to drive and inspect it.
type bundle struct {
	t         *testing.T
	dbURL     string
	amqpURL   string
	pool      *pgxpool.Pool
	store     *jobstore.Store
	llm       *fakeopenai.Server
	llmURL    string
	apiURL    string
	stopAPI   func()
	workers   []*runningWorker
	workerEnv env                     // the environment of the next worker
	apiEnv    env                     // added to the api's environment
	spans     *tracetest.SpanRecorder // every span of the api and the workers
	logs      *syncBuffer             // every log line of the api and the workers
	// llmHeaders are the headers of every request the LLM received.
	llmHeaders headerLog
	// llmHold, while a test holds it locked, holds every request to the LLM until unlocked.
	llmHold sync.RWMutex
}

// headerLog keeps the headers of requests, safe for concurrent use.
type headerLog struct {
	mu   sync.Mutex
	seen []http.Header
}

func (l *headerLog) record(h http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, h.Clone())
}

// all returns every request's headers so far.
func (l *headerLog) all() []http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

type runningWorker struct {
	addr string
	stop func() // SIGTERM: cancels and waits for the drain
}

type options struct {
	workers     int
	concurrency int
	noAPI       bool
	worker      env // added to the workers' environment
	api         env // added to the api's environment
}

// env is a program's environment in a test: what its getenv returns.
type env map[string]string

func (e env) getenv(k string) string { return e[k] }

// with returns e overlaid with more.
func (e env) with(more env) env {
	out := env{}
	for _, m := range []env{e, more} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func setup(t *testing.T, opts options) *bundle {
	t.Helper()
	b := &bundle{t: t, spans: tracetest.NewSpanRecorder(), logs: &syncBuffer{}}
	b.pool, b.dbURL = testkit.NewPool(t)
	b.store = jobstore.New(b.pool)
	b.amqpURL = testkit.NewVhostURL(t)

	var err error
	b.llm, err = fakeopenai.New(fakeopenai.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.llmHeaders.record(r.Header)
		b.llmHold.RLock()
		b.llmHold.RUnlock() //nolint:staticcheck // an empty section: it waits while a test holds the LLM
		b.llm.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.llmURL = srv.URL + "/v1"

	b.apiEnv = opts.api
	if !opts.noAPI {
		b.startAPI(b.amqpURL)
	}
	b.workerEnv = env{
		"DATABASE_URL": b.dbURL, "RABBITMQ_URL": b.amqpURL,
		"OPENAI_API_KEY": "sk-test-key", "OPENAI_BASE_URL": b.llmURL, "OPENAI_MODEL": "fake-gpt",
		"LLM_TIMEOUT": "10s", "ADMIN_ADDR": "127.0.0.1:0",
		"WORKER_CONCURRENCY": strconv.Itoa(max(opts.concurrency, 4)), "WORKER_MAX_ATTEMPTS": strconv.Itoa(maxAttempts),
		"WORKER_RETRY_BASE_DELAY": "50ms", "WORKER_RETRY_MAX_DELAY": "200ms",
		"WORKER_DRAIN_TIMEOUT": "10s", "WORKER_REAP_INTERVAL": "1s", "LOG_LEVEL": "info",
	}.with(opts.worker)
	for range max(opts.workers, 1) {
		b.startWorker()
	}
	return b
}

// telemetry is what a program of the bundle logs and traces with: warnings go to the test
// log, every line to b.logs, spans to b.spans.
func (b *bundle) telemetry(name string) *telemetry.Telemetry {
	toTest := slog.NewJSONHandler(testWriter{b.t}, &slog.HandlerOptions{Level: slog.LevelWarn})
	toBuffer := slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	log := slog.New(telemetry.ContextHandler{Handler: teeHandler{toTest, toBuffer}}).With("service", name)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(telemetry.NewJobIDProcessor()), sdktrace.WithSpanProcessor(b.spans),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(name))))
	b.t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return telemetry.New(log, tp)
}

// teeHandler sends records to two handlers.
type teeHandler [2]slog.Handler

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h[0].Enabled(ctx, l) || h[1].Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, x := range h {
		if x.Enabled(ctx, r.Level) {
			if err := x.Handle(ctx, r.Clone()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h teeHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return teeHandler{h[0].WithAttrs(a), h[1].WithAttrs(a)}
}

func (h teeHandler) WithGroup(n string) slog.Handler {
	return teeHandler{h[0].WithGroup(n), h[1].WithGroup(n)}
}

// startAPI runs an api on amqpURL (which may be unreachable) and returns when it listens.
func (b *bundle) startAPI(amqpURL string) {
	b.t.Helper()
	addr, stop := b.start("careerops-api", app.API, env{
		"DATABASE_URL": b.dbURL, "RABBITMQ_URL": amqpURL, "JWT_SECRET": jwtSecret, "HTTP_ADDR": "127.0.0.1:0",
		"DATABASE_MAX_CONNS": "8", "SHUTDOWN_TIMEOUT": "5s", "LOG_LEVEL": "info",
		// No per-user limits unless a test sets them.
		"USER_REQUESTS_PER_MINUTE": "0", "USER_JOBS_PER_MINUTE": "0", "USER_TOKENS_PER_DAY": "0",
	}.with(b.apiEnv))
	b.apiURL = "http://" + addr
	b.stopAPI = stop
}

// startWorker runs a worker with b.workerEnv and returns when its admin server listens.
func (b *bundle) startWorker() *runningWorker {
	b.t.Helper()
	w := &runningWorker{}
	w.addr, w.stop = b.start("careerops-worker", app.Worker, b.workerEnv)
	b.workers = append(b.workers, w)
	return w
}

// start runs a program in process, as its main would but with environment e and the
// bundle's telemetry, and returns its listen address once it serves, and stop: SIGTERM,
// then wait for the program to end.
func (b *bundle) start(service string, program func(app.Options) cli.RunFunc, e env) (addr string, stop func()) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	run := program(app.Options{Telemetry: b.telemetry(service), Ready: func(addr string) { ready <- addr }})
	go func() { done <- run(ctx, nil, e.getenv, io.Discard, io.Discard) }()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		b.t.Fatalf("%s did not start: %v", service, err)
	}
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			b.t.Errorf("%s stopped with %v", service, err)
		}
	}
	b.t.Cleanup(stop)
	return addr, stop
}

// user creates a user and returns a token for it.
func (b *bundle) user(email string) string {
	b.t.Helper()
	id, err := b.store.AddUser(context.Background(), email)
	if err != nil {
		b.t.Fatal(err)
	}
	token, err := auth.Issue([]byte(jwtSecret), id, time.Hour, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	return token
}

// response is an answer of the api as it came.
type response struct{ *apiclient.Response }

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := r.Decode(v); err != nil {
		t.Fatal(err)
	}
}

// api is a client of the bundle's api.
func (b *bundle) api() *apiclient.Client { return apiclient.New(b.apiURL, nil) }

// do sends a request to the api; headers alternate names and values.
func (b *bundle) do(method, path, token string, body []byte, headers ...string) response {
	b.t.Helper()
	r, err := b.api().Do(context.Background(), method, path, token, body, headers...)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{r}
}

func jobBody(desc, cv, tone string) []byte {
	m := map[string]string{"jobDescription": desc, "cvText": cv}
	if tone != "" {
		m["tone"] = tone
	}
	b, _ := json.Marshal(m) // strings only: cannot fail
	return b
}

// submit posts a job and returns its id, failing unless the api answers 202.
func (b *bundle) submit(token, desc, cv, tone string) string {
	b.t.Helper()
	c, err := b.api().Create(context.Background(), token, job.CreateRequest{JobDescription: desc, CVText: cv, Tone: job.Tone(tone)}, "")
	if err != nil || c.Replayed {
		b.t.Fatalf("POST = %v (replayed %v), want 202", err, c.Replayed)
	}
	if c.Status != job.StatusPending || c.Location != "/api/cover-letter/status/"+c.JobID {
		b.t.Fatalf("POST answered %+v with Location %q", c.Accepted, c.Location)
	}
	return c.JobID
}

func (b *bundle) status(token, id string) job.View {
	b.t.Helper()
	v, err := b.api().Status(context.Background(), token, id)
	if err != nil {
		b.t.Fatalf("GET status: %v", err)
	}
	return v
}

// waitFinal polls the database until the job is completed, failed or cancelled.
func (b *bundle) waitFinal(id string, within time.Duration) jobstore.Job {
	b.t.Helper()
	var j jobstore.Job
	var err error
	testkit.Eventually(b.t, within, func() bool {
		j, err = b.store.GetAny(context.Background(), id)
		return err == nil && j.Status.Final()
	}, func() string { return fmt.Sprintf("job %s final: it is %+v (err %v)", id, j.Status, err) })
	return j
}

// oneJob runs a system, submits one job as a@example.com and waits until it is final.
func oneJob(t *testing.T, desc, cv string) (b *bundle, token, id string, j jobstore.Job) {
	t.Helper()
	b = setup(t, options{})
	token = b.user("a@example.com")
	id = b.submit(token, desc, cv, "")
	return b, token, id, b.waitFinal(id, 30*time.Second)
}

// waitStatus polls the api until the job is in one of the want statuses.
func (b *bundle) waitStatus(token, id string, within time.Duration, want ...job.Status) job.View {
	b.t.Helper()
	var v job.View
	if err := testkit.WaitUntil(context.Background(), within, 50*time.Millisecond, func() bool { // gentle on the api
		v = b.status(token, id)
		return slices.Contains(want, v.Status)
	}); err != nil {
		b.t.Fatalf("job %s not %v within %s: it is %+v", id, want, within, v)
	}
	return v
}

// count runs a counting query on the test database.
func (b *bundle) count(sql string, args ...any) int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitCount waits until a counting query returns want.
func (b *bundle) waitCount(want int, within time.Duration, sql string, args ...any) {
	b.t.Helper()
	var n int
	testkit.Eventually(b.t, within, func() bool { n = b.count(sql, args...); return n == want },
		func() string { return fmt.Sprintf("%s = %d, want %d", sql, n, want) })
}

// testWriter sends logs to t.Log, so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func faultsFailing() fakeopenai.Faults { return fakeopenai.Faults{FailRate: 1} }
func faultsHealthy() fakeopenai.Faults { return fakeopenai.Faults{} }

// ctl runs careeropsctl against the test's database and broker and returns its output.
func ctl(t *testing.T, b *bundle, args ...string) string {
	t.Helper()
	env := map[string]string{"DATABASE_URL": b.dbURL, "RABBITMQ_URL": b.amqpURL, "JWT_SECRET": jwtSecret}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ctlcmd.Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("careeropsctl %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

func pgxConnect(url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, url)
}

func issue(t *testing.T, userID int64) string {
	t.Helper()
	token, err := auth.Issue([]byte(jwtSecret), userID, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return token
}
