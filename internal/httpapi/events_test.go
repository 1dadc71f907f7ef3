package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
)

// pendingStore knows one pending job of user 1 and exists for nothing else.
type pendingStore struct{ JobStore }

func (pendingStore) UserExists(context.Context, int64) (bool, error) { return true, nil }
func (pendingStore) SpendStreamToken(context.Context, string, time.Time) (bool, error) {
	return true, nil
}
func (pendingStore) GetMany(context.Context, []string) ([]jobstore.Job, error) { return nil, nil }
func (pendingStore) Get(_ context.Context, user int64, id string) (jobstore.Job, error) {
	if user != 1 || id != "job-1" {
		return jobstore.Job{}, jobstore.ErrNotFound
	}
	return jobstore.Job{ID: id, UserID: 1, Status: job.StatusPending, Tone: job.ToneConcise}, nil
}

// countingHub counts live subscriptions.
type countingHub struct {
	mu   sync.Mutex
	live int
}

func (h *countingHub) Subscribe(string) (<-chan *progress.Event, func()) {
	h.mu.Lock()
	h.live++
	h.mu.Unlock()
	var once sync.Once
	return make(chan *progress.Event), func() {
		once.Do(func() { h.mu.Lock(); h.live--; h.mu.Unlock() })
	}
}

func (h *countingHub) subscriptions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live
}

// TestEventStreamLeavesNothingBehindWhenTheClientLeaves: a client that disconnects mid-stream
// loses its subscription and its writer goroutine within a heartbeat.
func TestEventStreamLeavesNothingBehindWhenTheClientLeaves(t *testing.T) {
	// fasthttp's process-wide clock and its worker-pool janitor (which sleeps before it
	// notices the stop) are not per connection; anything else left is a leak.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
	secret := []byte(strings.Repeat("s", 32))
	hub := &countingHub{}
	done := make(chan struct{})
	app := New(Deps{
		Store: pendingStore{}, Verifier: auth.NewVerifier(secret), Registry: prometheus.NewRegistry(),
		Telemetry: telemetry.New(slog.New(slog.DiscardHandler), noop.NewTracerProvider()),
		Streams:   Streams{Hub: hub, Done: done, Secret: secret, Heartbeat: 20 * time.Millisecond, Poll: time.Hour},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { close(done); _ = app.ShutdownWithTimeout(5 * time.Second) }()

	token, _ := auth.IssueStream(secret, 1, "job-1", time.Minute, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/api/cover-letter/job-1/events?token="+token, nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if !strings.HasPrefix(line, "retry:") || hub.subscriptions() != 1 {
		t.Fatalf("stream opened with %q and %d subscriptions", line, hub.subscriptions())
	}
	cancel()
	resp.Body.Close()
	testkit.Eventually(t, 5*time.Second, func() bool { return hub.subscriptions() == 0 },
		"the stream of a client that left unsubscribed")
}

// feedingHub hands every subscriber the same events: one of another job, then one of its own.
type feedingHub struct{}

func (feedingHub) Subscribe(string) (<-chan *progress.Event, func()) {
	ch := make(chan *progress.Event, 2)
	ch <- &progress.Event{Type: progress.TypeDelta, JobID: "job-2", Text: "ANOTHER JOB'S LETTER", Attempt: 1}
	ch <- &progress.Event{Type: progress.TypeDelta, JobID: "job-1", Text: "Dear", Attempt: 1}
	return ch, func() {}
}

// A stream writes only its own job's events, whatever its subscription hands it (a hub keyed
// by a buffer that changed under it once delivered other jobs' deltas).
func TestEventStreamWritesOnlyItsJobsEvents(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	done := make(chan struct{})
	app := New(Deps{
		Store: pendingStore{}, Verifier: auth.NewVerifier(secret), Registry: prometheus.NewRegistry(),
		Telemetry: telemetry.New(slog.New(slog.DiscardHandler), noop.NewTracerProvider()),
		Streams:   Streams{Hub: feedingHub{}, Done: done, Secret: secret, Heartbeat: time.Hour, Poll: time.Hour},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { close(done); _ = app.ShutdownWithTimeout(5 * time.Second) }()
	token, _ := auth.IssueStream(secret, 1, "job-1", time.Minute, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/api/cover-letter/job-1/events?token="+token, nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before its job's delta: %v", err)
		}
		if strings.Contains(line, "ANOTHER JOB") {
			t.Fatalf("the stream of job-1 wrote another job's delta: %s", line)
		}
		if strings.Contains(line, "Dear") {
			return
		}
	}
}

// streamServer serves the event streams of a real job store (seen through wrap, if not nil)
// with st's limits until the test ends.
type streamServer struct {
	base   string
	secret []byte
	store  *jobstore.Store
	pool   *pgxpool.Pool
	user   int64
}

func streamApp(t *testing.T, st Streams, wrap func(*jobstore.Store) JobStore) *streamServer {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	store := jobstore.New(pool)
	user, err := store.AddUser(context.Background(), "streams@example.com")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(strings.Repeat("s", 32))
	done := make(chan struct{})
	st.Hub, st.Done, st.Secret = &countingHub{}, done, secret
	st.Heartbeat, st.Poll = cmpDuration(st.Heartbeat, time.Hour), cmpDuration(st.Poll, time.Hour)
	var served JobStore = store
	if wrap != nil {
		served = wrap(store)
	}
	app := New(Deps{
		Store: served, Verifier: auth.NewVerifier(secret), Registry: prometheus.NewRegistry(),
		Telemetry: telemetry.New(slog.New(slog.DiscardHandler), noop.NewTracerProvider()), Streams: st,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { close(done); _ = app.ShutdownWithTimeout(5 * time.Second) })
	return &streamServer{base: "http://" + ln.Addr().String(), secret: secret, store: store, pool: pool, user: user}
}

// job creates a pending job of the server's user (no worker takes it).
func (s *streamServer) job(t *testing.T, id string) {
	t.Helper()
	if _, _, err := s.store.Create(context.Background(), jobstore.NewJob{ID: id, UserID: s.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}); err != nil {
		t.Fatal(err)
	}
}

// url is the stream URL of job id with a new stream token.
func (s *streamServer) url(id string) string {
	token, _ := auth.IssueStream(s.secret, s.user, id, time.Minute, time.Now())
	return s.base + "/api/cover-letter/" + id + "/events?token=" + token
}

func openStream(ctx context.Context, t *testing.T, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// One user may hold MaxPerUser streams on a replica at once; more get 429 until one closes.
func TestEventStreamsPerUserAreCapped(t *testing.T) {
	// A stream notices its client left at its next write: heartbeats every 20 ms here.
	srv := streamApp(t, Streams{MaxPerUser: 2, Heartbeat: 20 * time.Millisecond}, nil)
	srv.job(t, "job-1")
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		if resp := openStream(ctx, t, srv.url("job-1")); resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	third := openStream(context.Background(), t, srv.url("job-1"))
	third.Body.Close()
	if third.StatusCode != http.StatusTooManyRequests || third.Header.Get("Retry-After") == "" {
		t.Fatalf("a third stream: %d (Retry-After %q), want 429", third.StatusCode, third.Header.Get("Retry-After"))
	}
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		resp := openStream(ctx, t, srv.url("job-1"))
		if resp.StatusCode == 200 {
			return
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("after one stream closed, a new one still gets %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A stream ends after MaxLifetime; EventSource reconnects with Last-Event-ID and resumes.
func TestEventStreamsEndAfterTheirLifetime(t *testing.T) {
	srv := streamApp(t, Streams{MaxLifetime: 200 * time.Millisecond}, nil)
	srv.job(t, "job-1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp := openStream(ctx, t, srv.url("job-1"))
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the stream did not end by itself within 5 s: %v", err)
	}
}

// A stream token opens the stream once: a copy of the URL (from a log, a proxy, an exported
// span) opens nothing, on this replica or another (the use is recorded in the database).
func TestStreamTokenOpensTheStreamOnce(t *testing.T) {
	srv := streamApp(t, Streams{}, nil)
	srv.job(t, "job-1")
	url := srv.url("job-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := openStream(ctx, t, url)
	defer first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("first use: %d", first.StatusCode)
	}
	again := openStream(ctx, t, url)
	body, _ := io.ReadAll(again.Body)
	again.Body.Close()
	if again.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "token_used") {
		t.Fatalf("the same token again: %d %s, want 401 token_used", again.StatusCode, body)
	}
	if fresh := openStream(ctx, t, srv.url("job-1")); fresh.StatusCode != 200 {
		t.Fatalf("a new token: %d", fresh.StatusCode)
	} else {
		fresh.Body.Close()
	}
}

// countingStore counts the job reads of the event streams.
type countingStore struct {
	*jobstore.Store
	reads atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, user int64, id string) (jobstore.Job, error) {
	s.reads.Add(1)
	return s.Store.Get(ctx, user, id)
}

func (s *countingStore) GetMany(ctx context.Context, ids []string) ([]jobstore.Job, error) {
	s.reads.Add(1)
	return s.Store.GetMany(ctx, ids)
}

// A replica rereads the jobs its streams follow once per poll, not once per stream: 40
// streams on two jobs cost about one query per interval. When the job ends, every stream gets
// its final event from one read.
func TestEventStreamsShareOneReadPerPoll(t *testing.T) {
	const poll, streams = 50 * time.Millisecond, 40
	var counted *countingStore
	srv := streamApp(t, Streams{Poll: poll, MaxPerUser: streams}, func(s *jobstore.Store) JobStore {
		counted = &countingStore{Store: s}
		return counted
	})
	srv.job(t, "job-1")
	srv.job(t, "job-2")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var bodies []*bufio.Reader
	for i := range streams {
		resp := openStream(ctx, t, srv.url(fmt.Sprintf("job-%d", i%2+1)))
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		bodies = append(bodies, bufio.NewReader(resp.Body))
	}
	before := counted.reads.Load()
	time.Sleep(20 * poll)
	if reads := counted.reads.Load() - before; reads > 30 {
		t.Fatalf("%d reads in 20 polls with %d streams open, want about 20 (one per poll)", reads, streams)
	}
	if _, err := srv.pool.Exec(ctx, `UPDATE cover_letter_jobs SET status = 'completed', cover_letter = 'Dear Acme', completed_at = now()`); err != nil {
		t.Fatal(err)
	}
	for i, r := range bodies {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d ended before its final event: %v", i, err)
			}
			if strings.HasPrefix(line, "event: completed") {
				break
			}
		}
	}
}
