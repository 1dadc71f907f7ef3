package jobstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

// runUntilCleanup runs r until the test ends.
func runUntilCleanup[R interface{ Run(context.Context) error }](t *testing.T, r R) R {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return r
}

// runBatcher runs a batcher of s with one batch in flight until the test ends.
func runBatcher(t *testing.T, s *jobstore.Store) *jobstore.Batcher {
	t.Helper()
	return runUntilCleanup(t, jobstore.NewBatcher(s, 64, 1))
}

// Concurrent creates commit together: 200 jobs in far fewer transactions (a transaction's
// jobs share its now()), each with its message.
func TestBatcherCommitsCreatesTogether(t *testing.T) {
	s, tb, ctx := setup(t)
	b := runBatcher(t, s.Store)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			j, created, err := b.Create(ctx, jobstore.NewJob{ID: fmt.Sprintf("job-%d", i), UserID: tb.user, JobDescription: "x", CVText: "y",
				Tone: job.ToneConcise, Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
			if err != nil || !created || j.ID != fmt.Sprintf("job-%d", i) || j.Status != job.StatusPending || j.TraceParent == "" {
				t.Errorf("create %d = %+v, %v, %v", i, j, created, err)
			}
		})
	}
	wg.Wait()
	var jobs, messages, transactions int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT created_at), (SELECT count(*) FROM outbox_messages WHERE routing_key = $1)
		FROM cover_letter_jobs`, job.QueueGenerate).Scan(&jobs, &transactions, &messages); err != nil {
		t.Fatal(err)
	}
	if jobs != n || messages != n {
		t.Fatalf("%d jobs and %d messages for %d creates", jobs, messages, n)
	}
	if transactions > n/4 {
		t.Fatalf("%d creates took %d transactions: not batched", n, transactions)
	}
	t.Logf("%d creates in %d transactions", n, transactions)
}

// In a batch, each create still gets its own answer: a replayed key its first job, a reused
// key a conflict, an unknown user an error (which fails the batch's INSERT: the others are
// created all the same), a counted create its own path.
func TestBatcherAnswersEachCreate(t *testing.T) {
	s, tb, ctx := setup(t)
	b := runBatcher(t, s.Store)
	first, _, err := s.Create(ctx, jobstore.NewJob{ID: "first", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise, IdempotencyKey: "k", RequestHash: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		n       jobstore.NewJob
		id      string
		created bool
		err     error
	}
	plain := func(id string) jobstore.NewJob {
		return jobstore.NewJob{ID: id, UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}
	}
	cases := []want{
		{n: jobstore.NewJob{ID: "replay", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise, IdempotencyKey: "k", RequestHash: "h1"}, id: first.ID},
		{n: jobstore.NewJob{ID: "reuse", UserID: tb.user, JobDescription: "z", CVText: "y", Tone: job.ToneConcise, IdempotencyKey: "k", RequestHash: "h2"}, err: jobstore.ErrIdempotencyConflict},
		{n: jobstore.NewJob{ID: "stranger", UserID: 99999, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}, err: jobstore.ErrUnknownUser},
		{n: jobstore.NewJob{ID: "counted", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise, Limits: jobstore.Limits{JobsPerMinute: 100}}, id: "counted", created: true},
	}
	for i := range 20 {
		cases = append(cases, want{n: plain(fmt.Sprintf("plain-%d", i)), id: fmt.Sprintf("plain-%d", i), created: true})
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			j, created, err := b.Create(ctx, c.n)
			if !errors.Is(err, c.err) || (c.err == nil && (j.ID != c.id || created != c.created)) {
				t.Errorf("%s: job %q created %v err %v; want job %q created %v err %v", c.n.ID, j.ID, created, err, c.id, c.created, c.err)
			}
		})
	}
	wg.Wait()
	var messages int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&messages); err != nil || messages != 22 {
		t.Fatalf("%d messages (%v), want 22: first, counted and 20 plain", messages, err)
	}
}

// A batcher not running (not yet, or no more) creates one by one.
func TestBatcherWithoutRunCreatesAlone(t *testing.T) {
	s, tb, ctx := setup(t)
	b := jobstore.NewBatcher(s.Store, 64, 1)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Run(stopped); err != nil {
		t.Fatal(err)
	}
	if _, created, err := b.Create(ctx, jobstore.NewJob{ID: "after", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}); err != nil || !created {
		t.Fatalf("create after Run returned: %v, %v", created, err)
	}
}

// A batched create answers with the job as stored, and its message carries the row's
// created_at: the answer and the message are made before the statement that stores them.
func TestBatchedCreateAnswersWhatItStored(t *testing.T) {
	s, tb, ctx := setup(t)
	b := runBatcher(t, s.Store)
	var wg sync.WaitGroup
	answers := make([]jobstore.Job, 10)
	for i := range answers {
		wg.Go(func() {
			j, _, err := b.Create(ctx, jobstore.NewJob{ID: fmt.Sprintf("job-%d", i), UserID: tb.user, JobDescription: "x", CVText: "y",
				Tone: job.ToneFriendly, IdempotencyKey: fmt.Sprintf("key-%d", i), RequestHash: "h",
				Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
			if err != nil {
				t.Error(err)
			}
			answers[i] = j
		})
	}
	wg.Wait()
	for _, a := range answers {
		stored, err := s.Get(ctx, tb.user, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != stored.ID || a.UserID != stored.UserID || a.Status != stored.Status || a.Tone != stored.Tone ||
			a.JobDescription != stored.JobDescription || a.CVText != stored.CVText || a.TraceParent != stored.TraceParent ||
			!a.CreatedAt.Equal(stored.CreatedAt) || !a.UpdatedAt.Equal(stored.UpdatedAt) || a.Attempts != stored.Attempts {
			t.Fatalf("answered %+v, stored %+v", a, stored)
		}
		var body []byte
		if err := tb.pool.QueryRow(ctx, `SELECT body FROM outbox_messages WHERE message_id = $1`, a.ID+"/0").Scan(&body); err != nil {
			t.Fatal(err)
		}
		var m job.GenerateMessage
		if err := json.Unmarshal(body, &m); err != nil || !m.CreatedAt.Equal(stored.CreatedAt) || m.JobID != a.ID {
			t.Fatalf("message %s (%v): created_at %v, row's %v", body, err, m.CreatedAt, stored.CreatedAt)
		}
	}
}

// A batcher with a hand-off publishes its jobs' messages itself after each commit: no relay
// runs here, and the rows were written held (due only after the hand-off's Hold), yet every
// job's message reaches its queue at once and the outbox empties.
func TestBatcherHandsItsMessagesOff(t *testing.T) {
	s, tb, ctx := setup(t)
	ch, _ := handOff(t, s, tb)
	b := runUntilCleanup(t, jobstore.NewBatcher(s.Store, 64, 1))

	const n = 50
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, created, err := b.Create(ctx, jobstore.NewJob{ID: fmt.Sprintf("job-%d", i), UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}); err != nil || !created {
				t.Errorf("create %d: %v, %v", i, created, err)
			}
		})
	}
	wg.Wait()
	tb.wantOutbox(t, 0)
	seen := map[string]bool{}
	for range n {
		d := testkit.GetMessage(t, ch, job.QueueGenerate, 5*time.Second)
		var m job.GenerateMessage
		if err := json.Unmarshal(d.Body, &m); err != nil || seen[m.JobID] {
			t.Fatalf("message %s: %v, seen before %v", d.Body, err, seen[m.JobID])
		}
		seen[m.JobID] = true
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the jobs' messages took %v", took)
	}
}
