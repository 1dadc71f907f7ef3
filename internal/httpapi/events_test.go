package httpapi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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

func (h *countingHub) Subscribe(string) (<-chan progress.Event, func()) {
	h.mu.Lock()
	h.live++
	h.mu.Unlock()
	var once sync.Once
	return make(chan progress.Event), func() {
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

func (feedingHub) Subscribe(string) (<-chan progress.Event, func()) {
	ch := make(chan progress.Event, 2)
	ch <- progress.Event{Type: progress.TypeDelta, JobID: "job-2", Text: "ANOTHER JOB'S LETTER", Attempt: 1}
	ch <- progress.Event{Type: progress.TypeDelta, JobID: "job-1", Text: "Dear", Attempt: 1}
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

// streamApp serves job-1 of user 1 (pending forever) with st's limits; it returns the stream
// URL with a token, and stops when the test ends.
func streamApp(t *testing.T, st Streams) string {
	t.Helper()
	secret := []byte(strings.Repeat("s", 32))
	done := make(chan struct{})
	st.Hub, st.Done, st.Secret = &countingHub{}, done, secret
	st.Heartbeat, st.Poll = cmpDuration(st.Heartbeat, time.Hour), time.Hour
	app := New(Deps{
		Store: pendingStore{}, Verifier: auth.NewVerifier(secret), Registry: prometheus.NewRegistry(),
		Telemetry: telemetry.New(slog.New(slog.DiscardHandler), noop.NewTracerProvider()), Streams: st,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { close(done); _ = app.ShutdownWithTimeout(5 * time.Second) })
	token, _ := auth.IssueStream(secret, 1, "job-1", time.Minute, time.Now())
	return "http://" + ln.Addr().String() + "/api/cover-letter/job-1/events?token=" + token
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
	url := streamApp(t, Streams{MaxPerUser: 2, Heartbeat: 20 * time.Millisecond})
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		if resp := openStream(ctx, t, url); resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	third := openStream(context.Background(), t, url)
	third.Body.Close()
	if third.StatusCode != http.StatusTooManyRequests || third.Header.Get("Retry-After") == "" {
		t.Fatalf("a third stream: %d (Retry-After %q), want 429", third.StatusCode, third.Header.Get("Retry-After"))
	}
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		resp := openStream(ctx, t, url)
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
	url := streamApp(t, Streams{MaxLifetime: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp := openStream(ctx, t, url)
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the stream did not end by itself within 5 s: %v", err)
	}
}
