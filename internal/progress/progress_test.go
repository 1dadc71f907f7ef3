package progress_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testBundle is a Publisher, as the worker runs it, on a vhost of its own; the Hub under
// test receives on the same vhost.
type testBundle struct {
	url string
	pub *progress.Publisher
	log *slog.Logger
}

// setup runs a Hub and a Publisher on a fresh vhost until the test ends.
func setup(t *testing.T) (*progress.Hub, *testBundle) {
	t.Helper()
	url := testkit.NewVhostURL(t)
	log := slog.New(slog.DiscardHandler)
	conn := dial(t, url)
	hub, pub := progress.NewHub(conn, log), progress.NewPublisher(conn, log)
	run(t, hub.Run, pub.Run)
	return hub, &testBundle{url: url, pub: pub, log: log}
}

// dial connects to url until the test ends.
func dial(t *testing.T, url string) *broker.Connection {
	t.Helper()
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: url, Name: "progress-test",
		MinBackoff: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); conn.Wait() })
	return conn
}

// run runs each of runs until the test ends, and waits for them to return.
func run(t *testing.T, runs ...func(context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() { r(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// watch subscribes to jobID and publishes probe events until the first one arrives: from then
// on the hub's queue is bound and events for jobID reach it.
func (tb *testBundle) watch(t *testing.T, hub *progress.Hub, jobID string) (<-chan *progress.Event, func()) {
	t.Helper()
	events, cancel := hub.Subscribe(jobID)
	t.Cleanup(cancel)
	probe := progress.Event{Type: progress.TypeStatus, JobID: jobID, Status: job.StatusPending}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		tb.pub.Publish(probe)
		select {
		case <-events:
			drainProbes(t, events)
			return events, cancel
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no event for %s reached the hub", jobID)
		}
	}
}

// drainProbes discards the probes still in flight: they stop coming within a moment.
func drainProbes(t *testing.T, events <-chan *progress.Event) {
	t.Helper()
	for {
		select {
		case e := <-events:
			if e.Status != job.StatusPending {
				t.Fatalf("drained a real event %+v", e)
			}
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// deltas are n pieces of a letter for jobID.
func deltas(jobID string, n int) []progress.Event {
	out := make([]progress.Event, n)
	for i := range out {
		out[i] = progress.Event{Type: progress.TypeDelta, JobID: jobID, Attempt: 1, Index: i, Text: fmt.Sprintf("piece %d ", i)}
	}
	return out
}

// receive reads n events from events, failing after 20 s.
func receive(t *testing.T, events <-chan *progress.Event, n int) []progress.Event {
	t.Helper()
	got := make([]progress.Event, 0, n)
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case e := <-events:
			got = append(got, *e)
		case <-deadline:
			t.Fatalf("received %d events, want %d", len(got), n)
		}
	}
	return got
}

// quiet checks that no event arrives for a while.
func quiet(t *testing.T, events <-chan *progress.Event) {
	t.Helper()
	select {
	case e := <-events:
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestPublishedEventsReachTheirJobsSubscribersInOrder(t *testing.T) {
	t.Parallel()
	hub, tb := setup(t)
	a, _ := tb.watch(t, hub, "job-a")
	b, _ := tb.watch(t, hub, "job-b")
	if n := hub.Watching(); n != 2 {
		t.Fatalf("watching %d jobs, want 2", n)
	}
	want := deltas("job-a", 20)
	for _, e := range want {
		tb.pub.Publish(e)
		tb.pub.Publish(progress.Event{Type: progress.TypeDelta, JobID: "job-c", Text: "nobody watches"})
	}
	done := progress.Event{Type: progress.TypeStatus, JobID: "job-a", Status: job.StatusCompleted, Attempt: 1}
	tb.pub.Publish(done)
	got := receive(t, a, len(want)+1)
	for i, e := range append(want, done) {
		if got[i] != e {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], e)
		}
	}
	quiet(t, b) // job-b's subscriber sees nothing of job-a's
}

func TestEveryWatcherOfAJobGetsItsEventsUntilItLeaves(t *testing.T) {
	t.Parallel()
	hub, tb := setup(t)
	first, leaveFirst := tb.watch(t, hub, "job-a")
	second, leaveSecond := hub.Subscribe("job-a")
	t.Cleanup(leaveSecond)
	if n := hub.Watching(); n != 1 {
		t.Fatalf("watching %d jobs, want 1", n)
	}
	e := progress.Event{Type: progress.TypeStatus, JobID: "job-a", Status: job.StatusProcessing, Attempt: 1}
	tb.pub.Publish(e)
	if got := receive(t, first, 1)[0]; got != e {
		t.Fatalf("first watcher got %+v", got)
	}
	if got := receive(t, second, 1)[0]; got != e {
		t.Fatalf("second watcher got %+v", got)
	}

	leaveFirst()
	leaveFirst() // leaving twice is harmless
	tb.pub.Publish(e)
	if got := receive(t, second, 1)[0]; got != e {
		t.Fatalf("the remaining watcher got %+v", got)
	}
	quiet(t, first)

	leaveSecond()
	if n := hub.Watching(); n != 0 {
		t.Fatalf("watching %d jobs after everyone left, want 0", n)
	}
	tb.pub.Publish(e)
	quiet(t, second)
}

// TestASlowWatcherLosesEventsAndHoldsUpNobody: each watcher has a buffer of 256 events; one
// that does not read loses what overflows, while the others get everything.
func TestASlowWatcherLosesEventsAndHoldsUpNobody(t *testing.T) {
	t.Parallel()
	hub, tb := setup(t)
	fast, _ := tb.watch(t, hub, "job-a")
	slow, _ := hub.Subscribe("job-a")
	want := deltas("job-a", 400)
	for _, e := range want {
		tb.pub.Publish(e)
	}
	got := receive(t, fast, len(want))
	if got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("the fast watcher's last event %+v", got[len(got)-1])
	}
	if n := len(slow); n != 256 {
		t.Fatalf("the slow watcher holds %d events, want its buffer full (256)", n)
	}
	if e := <-slow; *e != want[0] {
		t.Fatalf("the slow watcher kept %+v first, want the oldest", e)
	}
}

// TestPublishNeverBlocks: without a broker, or with a full buffer, events are dropped at once.
func TestPublishNeverBlocks(t *testing.T) {
	t.Parallel()
	var nilPub *progress.Publisher
	nilPub.Publish(progress.Event{JobID: "job-a"}) // a nil Publisher drops everything

	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: "amqp://guest:guest@127.0.0.1:1/",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); conn.Wait() })
	pub := progress.NewPublisher(conn, slog.New(slog.DiscardHandler))
	start := time.Now()
	for _, e := range deltas("job-a", 10000) { // more than the buffer holds; nothing sends yet
		pub.Publish(e)
	}
	run(t, pub.Run) // RabbitMQ is away: each try to send waits a second at most, then drops
	for _, e := range deltas("job-a", 100) {
		pub.Publish(e)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("publishing took %v", took)
	}
}

// TestTheHubRebindsItsJobsAfterALostConnection: after a broker restart the hub opens a new
// queue and binds it for every job still watched.
func TestTheHubRebindsItsJobsAfterALostConnection(t *testing.T) {
	t.Parallel()
	hub, tb := setup(t)
	events, _ := tb.watch(t, hub, "job-a")
	testkit.CloseConnections(t, tb.url)
	e := progress.Event{Type: progress.TypeStatus, JobID: "job-a", Status: job.StatusCompleted}
	deadline := time.Now().Add(20 * time.Second)
	for {
		tb.pub.Publish(e) // lost until the hub and the publisher are back
		select {
		case got := <-events:
			if *got != e {
				t.Fatalf("got %+v", got)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no event after the broker came back")
		}
	}
}

// TestTheHubSkipsWhatIsNoEvent: messages on the exchange that are not events, or name no
// job, are dropped; the next event still arrives.
func TestTheHubSkipsWhatIsNoEvent(t *testing.T) {
	t.Parallel()
	hub, tb := setup(t)
	events, _ := tb.watch(t, hub, "job-a")
	ch := testkit.Channel(t, tb.url)
	for _, body := range []string{"not json", `{"type":"delta","text":"no job"}`, `[1]`} {
		if err := ch.PublishWithContext(context.Background(), job.ExchangeProgress, "job-a", false, false,
			amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	e := progress.Event{Type: progress.TypeDelta, JobID: "job-a", Attempt: 2, Index: 1, Text: "after"}
	tb.pub.Publish(e)
	if got := receive(t, events, 1)[0]; got != e {
		t.Fatalf("got %+v, want the event after the junk", got)
	}
}

// TestEventJSON pins the wire format the api streams on to browsers.
func TestEventJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    progress.Event
		want string
	}{
		{progress.Event{Type: progress.TypeStatus, JobID: "j", Status: job.StatusProcessing, Attempt: 1},
			`{"type":"status","jobId":"j","status":"processing","attempt":1}`},
		{progress.Event{Type: progress.TypeDelta, JobID: "j", Attempt: 2, Index: 3, Text: "Dear"},
			`{"type":"delta","jobId":"j","attempt":2,"index":3,"text":"Dear"}`},
		{progress.Event{Type: progress.TypeDelta, JobID: "j", Attempt: 1},
			`{"type":"delta","jobId":"j","attempt":1}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.e)
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v = %s (%v), want %s", tt.e, b, err, tt.want)
		}
	}
}

func TestAJobNobodyWatchesIsUnwatchedUntilSomeoneDoes(t *testing.T) {
	t.Parallel()
	hub, tb := setup(t)
	if !tb.pub.Watched("job-q") {
		t.Fatal("a job nothing is known of counts as unwatched")
	}
	// No queue is bound for job-q: RabbitMQ returns its event, and its pieces wait.
	tb.pub.Publish(progress.Event{Type: progress.TypeStatus, JobID: "job-q", Status: job.StatusProcessing, Attempt: 1})
	testkit.Eventually(t, 10*time.Second, func() bool { return !tb.pub.Watched("job-q") }, "job-q unwatched after its event came back")

	// Someone comes: once the quiet spell is over, job-q's events reach them and stay wanted.
	events, _ := hub.Subscribe("job-q")
	testkit.Eventually(t, progress.QuietAtMost, func() bool { return tb.pub.Watched("job-q") }, "job-q watched again after its quiet spell")
	for _, e := range deltas("job-q", 3) {
		tb.pub.Publish(e)
	}
	receive(t, events, 3)
	time.Sleep(200 * time.Millisecond) // a return would have come by now
	if !tb.pub.Watched("job-q") {
		t.Fatal("job-q unwatched while its events reach a watcher")
	}

	// A job's final status is its last word: never returned, and it forgets the job.
	tb.pub.Publish(progress.Event{Type: progress.TypeStatus, JobID: "job-f", Status: job.StatusProcessing, Attempt: 1})
	testkit.Eventually(t, 10*time.Second, func() bool { return !tb.pub.Watched("job-f") }, "job-f unwatched")
	tb.pub.Publish(progress.Event{Type: progress.TypeStatus, JobID: "job-f", Status: job.StatusCompleted, Attempt: 1})
	testkit.Eventually(t, progress.QuietFirst/2, func() bool { return tb.pub.Watched("job-f") }, "job-f forgotten after its final status")
	tb.pub.Publish(progress.Event{Type: progress.TypeStatus, JobID: "job-g", Status: job.StatusFailed, Attempt: 1})
	time.Sleep(200 * time.Millisecond)
	if !tb.pub.Watched("job-g") {
		t.Fatal("a final status came back unrouted: it was sent mandatory")
	}
}
