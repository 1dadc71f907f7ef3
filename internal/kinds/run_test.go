package kinds_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/internal/worker"
)

// A throwaway kind, declared in a few lines, gets everything from the declaration: enqueue
// through the outbox, its own quorum queue and DLQ, claim, retries with backoff, a permanent
// failure dead-lettered with its reason, and its result stored in the shared jobs table.
func TestAThrowawayKindRunsEndToEnd(t *testing.T) {
	t.Parallel()
	type args struct {
		Text string `json:"text"`
	}
	type result struct {
		Reversed string `json:"reversed"`
	}
	var mu sync.Mutex
	tries := map[string]int{}
	reverse := kind.Define(kind.Kind{Spec: jobstore.Spec{Name: "test.reverse"}, Retry: kind.Retry{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond}},
		func(_ context.Context, j jobstore.Run, a args) (result, error) {
			mu.Lock()
			tries[j.ID]++
			try := tries[j.ID]
			mu.Unlock()
			switch {
			case a.Text == "refuse":
				return result{}, kind.Fail("refused", errors.New("this text is refused"))
			case a.Text == "flaky" && try == 1:
				return result{}, errors.New("a transient failure")
			}
			r := []rune(a.Text)
			for i, k := 0, len(r)-1; i < k; i, k = i+1, k-1 {
				r[i], r[k] = r[k], r[i]
			}
			return result{Reversed: string(r)}, nil
		})
	if err := reverse.Validate(); err != nil {
		t.Fatal(err)
	}

	st := run(t, func(*jobstore.Store) kind.Kind { return reverse })
	store, runs, ch := st.store, st.runs, st.ch
	user, err := store.AddUser(context.Background(), "kind@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, text := range []string{"hello", "flaky", "refuse"} {
		body, _ := json.Marshal(args{Text: text})
		if ids[text], err = runs.EnqueueNow(context.Background(), jobstore.NewRun{UserID: user, Args: body}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runs.EnqueueNow(context.Background(), jobstore.NewRun{UserID: 999_999, Args: json.RawMessage(`{}`)}); !errors.Is(err, jobstore.ErrUnknownUser) {
		t.Fatalf("enqueue for nobody: %v, want ErrUnknownUser", err)
	}

	final := func(id string) jobstore.Run { return st.final(t, id) }
	if j := final(ids["hello"]); j.Status != job.StatusCompleted || !strings.Contains(string(j.Result), `"olleh"`) || j.Attempts != 1 {
		t.Fatalf("hello = %+v (result %s)", j, j.Result)
	}
	if j := final(ids["flaky"]); j.Status != job.StatusCompleted || j.Attempts != 2 {
		t.Fatalf("flaky = %+v, want completed on its second attempt", j)
	}
	if j := final(ids["refuse"]); j.Status != job.StatusFailed || j.Attempts != 1 || !strings.Contains(j.Error, "refused") {
		t.Fatalf("refuse = %+v, want failed at once", j)
	}
	dead := testkit.GetMessage(t, ch, job.DLQ("test.reverse"), 10*time.Second)
	if dead.Headers[job.HeaderDeathReason] != "refused" || !strings.Contains(string(dead.Body), `"text":"refuse"`) {
		t.Fatalf("dead letter = %v %s", dead.Headers, dead.Body)
	}
	var kinds []string
	if err := store.Pool().QueryRow(context.Background(), `SELECT array_agg(DISTINCT kind) FROM jobs`).Scan(&kinds); err != nil || fmt.Sprint(kinds) != "[test.reverse]" {
		t.Fatalf("kinds in the jobs table = %v, %v", kinds, err)
	}
}

// stack is a kind's worker with a relay, on a database and a vhost of the test's own.
type stack struct {
	store *jobstore.Store
	runs  *jobstore.Runs // the kind's jobs
	ch    *amqp.Channel  // on the vhost
}

// run runs the worker of the kind build makes (from the store), with a relay, on a database
// and a vhost of the test's own, until the test ends.
func run(t *testing.T, build func(*jobstore.Store) kind.Kind) *stack {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	url := testkit.NewVhostURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	store := jobstore.New(pool)
	k := build(store)
	conn, err := broker.Dial(ctx, broker.ConnectionConfig{URL: url, Name: t.Name(), Logger: slog.New(slog.DiscardHandler),
		Kinds: append(job.Kinds(), k.Name)})
	if err != nil {
		t.Fatal(err)
	}
	relay := outbox.NewRelay(pool, broker.NewPublisher(conn), outbox.RelayConfig{PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	store.OnOutboxWrite(relay.Wake)
	runs := store.Runs(k.Spec)
	w := worker.New(k, broker.NewConsumer(conn, k.Name, "test"), runs, store, worker.Config{
		Telemetry: telemetry.New(slog.New(slog.DiscardHandler), noop.NewTracerProvider()), ReapInterval: time.Hour,
		RetryBaseDelay: 50 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond,
	})
	done := make(chan error, 2)
	go func() { done <- relay.Run(ctx) }()
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Error(err)
			}
		}
		conn.Close()
	})
	return &stack{store: store, runs: runs, ch: testkit.Channel(t, url)}
}

// final waits for the job id of the stack's kind to reach a final status and returns it.
func (st *stack) final(t *testing.T, id string) jobstore.Run {
	t.Helper()
	var (
		j   jobstore.Run
		err error
	)
	testkit.Eventually(t, 20*time.Second, func() bool {
		j, err = st.runs.Get(context.Background(), id)
		return err == nil && j.Status.Final()
	}, "job "+id+" did not finish")
	return j
}
