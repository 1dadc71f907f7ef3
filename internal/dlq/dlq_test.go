package dlq_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

const traceparent = testkit.Traceparent

// testBundle is a test's own virtual host (topology declared) and database.
type testBundle struct {
	*testkit.Queues
	store *jobstore.Runs
}

// setup marks t parallel and gives it its own queues, database and store.
func setup(t *testing.T) *testBundle {
	t.Helper()
	t.Parallel()
	q := testkit.NewQueues(t)
	return &testBundle{Queues: q, store: jobstore.New(q.Pool).Runs(jobstore.CoverLetters(jobstore.Limits{}, nil))}
}

// channel opens a channel for the code under test; close it to return what it holds.
func (b *testBundle) channel(t *testing.T) *amqp.Channel {
	t.Helper()
	return testkit.Channel(t, b.URL)
}

// drain takes every message off queue (waiting until it holds want) and returns their job ids.
func (b *testBundle) drain(t *testing.T, queue string, want int) []string {
	t.Helper()
	if !b.WantQueueLen(t, queue, want) {
		t.FailNow()
	}
	var ids []string
	for {
		d, ok, err := b.Ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if !ok {
			return ids
		}
		ids = append(ids, dlq.EntryOf(d).JobID)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("EmptyDLQ", func(t *testing.T) {
		b := setup(t)
		entries, more, err := dlq.List(ctx, b.channel(t), job.QueueGenerate, 50)
		if err != nil || len(entries) != 0 || more != 0 {
			t.Fatalf("List = %v, %d, %v; want nothing", entries, more, err)
		}
	})

	t.Run("DescribesMessagesAndLeavesThemInOrder", func(t *testing.T) {
		b := setup(t)
		longError := b.DeadLetterEachKind(t)
		want := []dlq.Entry{
			{JobID: "job-worker", MessageID: "job-worker/dead", Reason: job.ReasonAttemptsExhausted, Error: longError},
			{JobID: "job-broker", MessageID: "job-broker/1", Reason: "delivery_limit"},
			{JobID: "", MessageID: "junk-1", Reason: job.ReasonInvalidMessage, Error: "invalid JSON"},
		}

		for range 2 { // the second listing sees the messages the first returned, in order
			ch := b.channel(t)
			entries, more, err := dlq.List(ctx, ch, job.QueueGenerate, 50)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if more != 0 || len(entries) != len(want) {
				t.Fatalf("List = %+v, more %d; want %+v", entries, more, want)
			}
			for i := range want {
				if entries[i] != want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, entries[i], want[i])
				}
			}
			_ = ch.Close()
			if !b.WantQueueLen(t, job.QueueDLQ, 3) {
				t.FailNow()
			}
		}

		ch := b.channel(t)
		entries, more, err := dlq.List(ctx, ch, job.QueueGenerate, 1)
		if err != nil || len(entries) != 1 || entries[0] != want[0] || more != 2 {
			t.Fatalf("List(limit 1) = %+v, more %d, %v; want the first and 2 more", entries, more, err)
		}
		_ = ch.Close()
		// All three are still there; RabbitMQ 3.x puts the returned one behind the others.
		if got := b.drain(t, job.QueueDLQ, 3); len(got) != 3 {
			t.Errorf("DLQ after List = %q, want 3 messages", got)
		}
	})

	t.Run("LimitOutOfRange", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []int{0, -1, dlq.MaxList + 1} {
			if _, _, err := dlq.List(ctx, nil, job.QueueGenerate, limit); !errors.Is(err, dlq.ErrBadLimit) {
				t.Errorf("List(limit %d) = %v, want ErrBadLimit", limit, err)
			}
		}
	})
}

// requeue runs dlq.Requeue on a channel of its own, closed afterwards (returning what it
// held), and collects the outcomes it reported.
func (b *testBundle) requeue(t *testing.T, store dlq.JobRequeuer, target dlq.Target) (dlq.Result, []dlq.Outcome, error) {
	t.Helper()
	ch := b.channel(t)
	defer ch.Close()
	var outcomes []dlq.Outcome
	res, err := dlq.Requeue(context.Background(), ch, store, target, func(o dlq.Outcome) error {
		outcomes = append(outcomes, o)
		return nil
	})
	return res, outcomes, err
}

func TestRequeue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	all := dlq.Target{All: true}

	t.Run("FailedJobGoesToTheOutboxUnderItsTrace", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-1")

		res, outcomes, err := b.requeue(t, b.store, dlq.Target{JobID: "job-1"})
		if err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		if res != (dlq.Result{Requeued: 1, Seen: 1, Present: 1}) {
			t.Errorf("result = %+v", res)
		}
		if len(outcomes) != 1 || outcomes[0] != (dlq.Outcome{Action: dlq.Requeued, JobID: "job-1", MessageID: "job-1/dead"}) {
			t.Errorf("outcomes = %+v", outcomes)
		}
		b.WantStatus(t, "job-1", job.StatusPending)
		var tp string
		if err := b.Pool.QueryRow(ctx, `SELECT coalesce(headers->>'traceparent', '') FROM outbox_messages WHERE routing_key = $1`,
			job.QueueGenerate).Scan(&tp); err != nil {
			t.Fatal(err)
		}
		if tp != traceparent {
			t.Errorf("outbox message traceparent = %q, want the DLQ message's", tp)
		}
		b.WantQueueLen(t, job.QueueDLQ, 0)
		b.WantQueueLen(t, job.QueueGenerate, 0) // publishing is the relay's job
	})

	t.Run("OneJobLeavesTheOthersInTheDLQ", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-a", "job-b", "job-c")
		res, _, err := b.requeue(t, b.store, dlq.Target{JobID: "job-b"})
		if err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		if res.Requeued != 1 || res.Seen != 3 {
			t.Errorf("result = %+v, want 1 requeued of 3 seen", res)
		}
		if got := b.drain(t, job.QueueDLQ, 2); strings.Join(got, ",") != "job-a,job-c" {
			t.Errorf("DLQ kept %q, want job-a and job-c in order", got)
		}
		b.WantStatus(t, "job-a", job.StatusFailed)
	})

	t.Run("AllSortsEveryMessage", func(t *testing.T) {
		b := setup(t)
		b.InsertJob(t, "job-failed", job.StatusFailed)
		b.DeadLetter(t, "job-failed", job.ReasonLLMRejected, "content policy")
		b.DeadJobs(t, job.StatusCompleted, "job-done")
		b.DeadLetter(t, "job-foreign", "delivery_limit", "")
		b.DeadLetterJunk(t)

		res, outcomes, err := b.requeue(t, b.store, all)
		if err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		if res != (dlq.Result{Requeued: 3, Skipped: 1, Seen: 4, Present: 4}) {
			t.Errorf("result = %+v", res)
		}
		want := []dlq.Outcome{
			{Action: dlq.Requeued, JobID: "job-failed", MessageID: "job-failed/dead"},
			{Action: dlq.Skipped, JobID: "job-done", MessageID: "job-done/dead", Status: job.StatusCompleted},
			{Action: dlq.Republished, JobID: "job-foreign", MessageID: "job-foreign/dead"},
			{Action: dlq.Republished, MessageID: "junk-1"},
		}
		if len(outcomes) != len(want) {
			t.Fatalf("outcomes = %+v, want %+v", outcomes, want)
		}
		for i := range want {
			if outcomes[i] != want[i] {
				t.Errorf("outcome %d = %+v, want %+v", i, outcomes[i], want[i])
			}
		}
		b.WantQueueLen(t, job.QueueDLQ, 0)
		b.WantGenerateRows(t, "job-done", 0)
		b.WantGenerateRows(t, "job-failed", 1)

		// The two republished messages, as they were minus the death headers.
		if !b.WantQueueLen(t, job.QueueGenerate, 2) {
			t.FailNow()
		}
		if d, _, _ := b.Ch.Get(job.QueueGenerate, true); dlq.EntryOf(d).JobID != "job-foreign" {
			t.Errorf("first republished = %s, want job-foreign's", d.Body)
		}
		d, ok, err := b.Ch.Get(job.QueueGenerate, true)
		if err != nil || !ok {
			t.Fatalf("get the republished junk: %v, %v", ok, err)
		}
		testkit.CheckRepublishedJunk(t, d)
	})

	t.Run("FailedJobWithoutDLQMessageIsRequeuedFromTheDatabase", func(t *testing.T) {
		b := setup(t)
		b.InsertJob(t, "job-gone", job.StatusFailed)
		b.DeadJobs(t, job.StatusFailed, "job-other")

		res, outcomes, err := b.requeue(t, b.store, dlq.Target{JobID: "job-gone"})
		if err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		if res.Requeued != 1 || len(outcomes) != 1 || outcomes[0] != (dlq.Outcome{Action: dlq.RequeuedFromDatabase, JobID: "job-gone"}) {
			t.Errorf("result = %+v, outcomes = %+v", res, outcomes)
		}
		b.WantStatus(t, "job-gone", job.StatusPending)
		b.WantGenerateRows(t, "job-gone", 1)
		b.WantQueueLen(t, job.QueueDLQ, 1)
	})

	t.Run("NothingToRequeueIsATypedError", func(t *testing.T) {
		b := setup(t)
		b.InsertJob(t, "job-ok", job.StatusCompleted)
		for id, want := range map[string]error{"job-none": jobstore.ErrNotFound, "job-ok": jobstore.ErrNotInDLQState} {
			res, _, err := b.requeue(t, b.store, dlq.Target{JobID: id})
			var nr *dlq.NotRequeuedError
			if !errors.As(err, &nr) || nr.JobID != id || !errors.Is(err, want) {
				t.Errorf("Requeue(%s) = %v, want a NotRequeuedError that is %v", id, err, want)
			}
			if res.Requeued != 0 || res.Skipped != 0 {
				t.Errorf("Requeue(%s) result = %+v", id, res)
			}
		}
		if got := (&dlq.NotRequeuedError{JobID: "job-ok", Status: job.StatusCompleted}).Error(); !strings.Contains(got, "its status is completed") {
			t.Errorf("error text = %q", got)
		}
	})

	t.Run("AllHandlesOnlyTheMessagesPresentAtTheStart", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-1", "job-2")
		// Each requeue dead-letters a new message meanwhile, as failing workers would.
		arriving := &hookStore{JobRequeuer: b.store, after: func(id string) {
			b.DeadLetter(t, "late-"+id, job.ReasonAttemptsExhausted, "boom")
		}}
		res, _, err := b.requeue(t, arriving, all)
		if err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		if res.Requeued != 2 || res.Seen != 2 || res.Present != 2 {
			t.Errorf("result = %+v, want the 2 messages present only", res)
		}
		if got := b.drain(t, job.QueueDLQ, 2); strings.Join(got, ",") != "late-job-1,late-job-2" {
			t.Errorf("DLQ holds %q, want the two late arrivals", got)
		}
	})

	t.Run("InterruptedBetweenMessages", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-1", "job-2", "job-3")
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := b.channel(t)
		var handled []string
		res, err := dlq.Requeue(ctx, ch, b.store, all, func(o dlq.Outcome) error {
			handled = append(handled, o.JobID)
			cancel() // the interrupt arrives while the first message is being handled
			return nil
		})
		_ = ch.Close()
		if err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		if !res.Interrupted || res.Requeued != 1 || strings.Join(handled, ",") != "job-1" {
			t.Errorf("result = %+v, handled %q; want job-1 only, interrupted", res, handled)
		}
		b.WantStatus(t, "job-1", job.StatusPending)
		if got := b.drain(t, job.QueueDLQ, 2); strings.Join(got, ",") != "job-2,job-3" {
			t.Errorf("DLQ holds %q, want job-2 and job-3", got)
		}
	})

	t.Run("AnErrorFromReportStopsIt", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-1", "job-2")
		ch := b.channel(t)
		stop := errors.New("stdout closed")
		res, err := dlq.Requeue(ctx, ch, b.store, all, func(dlq.Outcome) error { return stop })
		_ = ch.Close()
		if !errors.Is(err, stop) || res.Requeued != 1 {
			t.Fatalf("Requeue = %+v, %v; want 1 requeued, then the report's error", res, err)
		}
		b.WantQueueLen(t, job.QueueDLQ, 1)
	})

	t.Run("StoreFailureLeavesTheMessageInTheDLQ", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-1")
		down := errors.New("database is down")
		res, _, err := b.requeue(t, &hookStore{JobRequeuer: b.store, fail: down}, all)
		if !errors.Is(err, down) || res.Requeued != 0 {
			t.Fatalf("Requeue = %+v, %v; want the store's error", res, err)
		}
		b.WantQueueLen(t, job.QueueDLQ, 1)
	})

	t.Run("EmptyDLQ", func(t *testing.T) {
		b := setup(t)
		res, outcomes, err := b.requeue(t, b.store, all)
		if err != nil || res != (dlq.Result{}) || len(outcomes) != 0 {
			t.Fatalf("Requeue = %+v, %v, %v; want nothing done", res, outcomes, err)
		}
	})

	t.Run("BadTarget", func(t *testing.T) {
		t.Parallel()
		for _, target := range []dlq.Target{{}, {All: true, JobID: "job-1"}, {JobID: "no/such id"}} {
			if _, err := dlq.Requeue(ctx, nil, nil, target, nil); !errors.Is(err, dlq.ErrBadTarget) {
				t.Errorf("Requeue(%+v) = %v, want ErrBadTarget", target, err)
			}
		}
	})
}

// hookStore wraps a JobRequeuer: after runs after each successful Requeue, and a non-nil fail
// is every Requeue's error.
type hookStore struct {
	dlq.JobRequeuer
	after func(jobID string)
	fail  error
}

func (h *hookStore) Requeue(ctx context.Context, jobID string, headers map[string]string) (jobstore.Run, error) {
	if h.fail != nil {
		return jobstore.Run{}, h.fail
	}
	j, err := h.JobRequeuer.Requeue(ctx, jobID, headers)
	if err == nil && h.after != nil {
		h.after(jobID)
	}
	return j, err
}
