package jobstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

type testBundle struct {
	pool *pgxpool.Pool
	user int64
}

func setup(t *testing.T) (*jobstore.Store, *testBundle) {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	s := jobstore.New(pool)
	id, err := s.AddUser(context.Background(), "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return s, &testBundle{pool: pool, user: id}
}

func (tb *testBundle) create(t *testing.T, s *jobstore.Store, id string) jobstore.Job {
	t.Helper()
	j, created, err := s.Create(context.Background(), jobstore.NewJob{
		ID: id, UserID: tb.user, JobDescription: "Engineer", CVText: "CV", Tone: job.ToneConcise, RequestHash: "h",
		Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	})
	if err != nil || !created {
		t.Fatalf("Create = %v, created %v", err, created)
	}
	return j
}

func (tb *testBundle) outbox(t *testing.T, routingKey string) int {
	t.Helper()
	var n int
	if err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages WHERE routing_key = $1`, routingKey).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func msgFor(j jobstore.Job) job.GenerateMessage {
	return job.GenerateMessage{JobID: j.ID, UserID: j.UserID, JobDescription: j.JobDescription, CVText: j.CVText, Tone: j.Tone}
}

func TestCreateWritesTheJobAndItsMessageTogether(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	j := tb.create(t, s, "job-1")
	if j.Status != job.StatusPending || j.Attempts != 0 || j.Tone != job.ToneConcise || j.TraceParent == "" {
		t.Fatalf("created %+v", j)
	}
	if n := tb.outbox(t, job.QueueGenerate); n != 1 {
		t.Fatalf("%d outbox messages, want 1", n)
	}
	if _, _, err := s.Create(context.Background(), jobstore.NewJob{ID: "job-2", UserID: 424242, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}); !errors.Is(err, jobstore.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if n := tb.outbox(t, job.QueueGenerate); n != 1 {
		t.Fatalf("a refused job left a message: %d", n)
	}
}

func TestCreateWithIdempotencyKey(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	n := jobstore.NewJob{ID: "a", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneFriendly, IdempotencyKey: "k", RequestHash: "h1"}
	first, created, err := s.Create(ctx, n)
	if err != nil || !created {
		t.Fatal(err)
	}
	n.ID = "b"
	again, created, err := s.Create(ctx, n)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("replay = %s created %v err %v, want job %s", again.ID, created, err, first.ID)
	}
	n.ID, n.RequestHash = "c", "h2"
	if _, _, err := s.Create(ctx, n); !errors.Is(err, jobstore.ErrIdempotencyConflict) {
		t.Fatalf("reuse with another request: %v", err)
	}
	if got := tb.outbox(t, job.QueueGenerate); got != 1 {
		t.Fatalf("%d messages for one idempotent job", got)
	}
}

func TestClaimGuardsTheJob(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	j := tb.create(t, s, "job-1")

	claimed, lease, err := s.Claim(ctx, msgFor(j), false, time.Minute, "")
	if err != nil || claimed.Status != job.StatusProcessing || claimed.Attempts != 1 {
		t.Fatalf("first claim = %+v, %v", claimed, err)
	}
	if _, _, err := s.Claim(ctx, msgFor(j), false, time.Minute, ""); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("a duplicate message claimed a held job: %v", err)
	}
	// A redelivery means the holder lost its channel: the job is taken over.
	_, lease2, err := s.Claim(ctx, msgFor(j), true, time.Minute, "")
	if err != nil {
		t.Fatalf("redelivery did not take over: %v", err)
	}
	if _, err := s.Complete(ctx, lease, jobstore.Result{CoverLetter: "old"}, nil); !errors.Is(err, jobstore.ErrLeaseLost) {
		t.Fatalf("the old holder completed: %v", err)
	}
	done, err := s.Complete(ctx, lease2, jobstore.Result{CoverLetter: "Dear", PromptTokens: 10, CompletionTokens: 20, Model: "m"}, nil)
	if err != nil || done.Status != job.StatusCompleted || done.CoverLetter != "Dear" || done.CompletedAt == nil || done.Attempts != 2 {
		t.Fatalf("complete = %+v, %v", done, err)
	}
	for _, redelivered := range []bool{false, true} {
		if _, _, err := s.Claim(ctx, msgFor(j), redelivered, time.Minute, ""); !errors.Is(err, jobstore.ErrNotClaimable) {
			t.Fatalf("a completed job was claimed again (redelivered %v): %v", redelivered, err)
		}
	}
	if n := tb.outbox(t, job.QueueCompleted); n != 1 {
		t.Fatalf("%d completion messages, want 1", n)
	}
}

func TestClaimTakesOverAnExpiredLease(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	j := tb.create(t, s, "job-1")
	if _, _, err := s.Claim(ctx, msgFor(j), false, time.Millisecond, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, _, err := s.Claim(ctx, msgFor(j), false, time.Minute, ""); err != nil {
		t.Fatalf("an expired lease was not taken over: %v", err)
	}
}

func TestClaimCreatesAJobFromAForeignMessage(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	m := job.GenerateMessage{JobID: "ext-1", UserID: 9001, JobDescription: "x", CVText: "y", Tone: job.ToneFriendly,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	j, _, err := s.Claim(ctx, m, false, time.Minute, "")
	if err != nil || j.UserID != 9001 || j.Status != job.StatusProcessing || !j.CreatedAt.Equal(m.CreatedAt) {
		t.Fatalf("claim of a foreign message = %+v, %v", j, err)
	}
	// A standalone user added later gets a fresh id, not 9001.
	id, err := s.AddUser(ctx, "new@example.com")
	if err != nil || id == 9001 {
		t.Fatalf("AddUser = %d, %v", id, err)
	}
}

func TestRetrySchedulesTheJobLater(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	j := tb.create(t, s, "job-1")
	_, lease, err := s.Claim(ctx, msgFor(j), false, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	runAfter := time.Now().Add(time.Hour)
	retried, err := s.Retry(ctx, lease, "HTTP 500", runAfter, nil)
	if err != nil || retried.Status != job.StatusPending || retried.Error != "HTTP 500" {
		t.Fatalf("retry = %+v, %v", retried, err)
	}
	// An early copy of the message cannot run it before its time, even as a redelivery.
	if _, _, err := s.Claim(ctx, msgFor(j), true, time.Minute, ""); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("claimed before run_after: %v", err)
	}
	var due time.Time
	if err := tb.pool.QueryRow(ctx, `SELECT available_at FROM outbox_messages WHERE routing_key = $1 AND message_id = 'job-1/1'`, job.QueueGenerate).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if due.Sub(runAfter).Abs() > time.Millisecond {
		t.Fatalf("retry message due %v, want %v", due, runAfter)
	}
}

func TestFailAnnouncesAndDeadLetters(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	j := tb.create(t, s, "job-1")
	_, lease, err := s.Claim(ctx, msgFor(j), false, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := s.Fail(ctx, lease, "LLM said no", nil, jobstore.DeadLetter{Body: []byte(`{"jobId":"job-1"}`), Reason: job.ReasonLLMRejected, Error: "LLM said no"})
	if err != nil || failed.Status != job.StatusFailed || failed.Error != "LLM said no" || failed.CompletedAt == nil {
		t.Fatalf("fail = %+v, %v", failed, err)
	}
	var headers map[string]string
	if err := tb.pool.QueryRow(ctx, `SELECT headers FROM outbox_messages WHERE routing_key = $1`, job.QueueDLQ).Scan(&headers); err != nil {
		t.Fatal(err)
	}
	if headers[job.HeaderDeathReason] != job.ReasonLLMRejected || headers[job.HeaderDeathError] != "LLM said no" {
		t.Fatalf("dead letter headers %v", headers)
	}
	if n := tb.outbox(t, job.QueueCompleted); n != 1 {
		t.Fatalf("%d failure announcements, want 1", n)
	}
}

func TestRequeueRestoresTheBudget(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	j := tb.create(t, s, "job-1")
	if _, err := s.Requeue(ctx, "job-1", nil); !errors.Is(err, jobstore.ErrNotInDLQState) {
		t.Fatalf("requeue of a pending job: %v", err)
	}
	if _, err := s.Requeue(ctx, "nope", nil); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("requeue of an unknown job: %v", err)
	}
	for range 2 {
		_, lease, err := s.Claim(ctx, msgFor(j), true, time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Retry(ctx, lease, "boom", time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, lease, err := s.Claim(ctx, msgFor(j), true, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fail(ctx, lease, "gave up", nil, jobstore.DeadLetter{Reason: job.ReasonAttemptsExhausted}); err != nil {
		t.Fatal(err)
	}
	requeued, err := s.Requeue(ctx, "job-1", nil)
	if err != nil || requeued.Status != job.StatusPending || requeued.Attempts != 3 || requeued.AttemptsSince != 0 || requeued.Error != "" || requeued.CompletedAt != nil {
		t.Fatalf("requeue = %+v, %v", requeued, err)
	}
}

func TestReapExpiredRequeuesOrFails(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	a, b := tb.create(t, s, "a"), tb.create(t, s, "b")
	for _, j := range []jobstore.Job{a, b} {
		if _, _, err := s.Claim(ctx, msgFor(j), false, time.Millisecond, ""); err != nil {
			t.Fatal(err)
		}
	}
	// b has used its budget of 2 with one more claim.
	time.Sleep(5 * time.Millisecond)
	if _, _, err := s.Claim(ctx, msgFor(b), false, time.Millisecond, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	requeued, failed, err := s.ReapExpired(ctx, 0, 2)
	if err != nil || requeued != 1 || failed != 1 {
		t.Fatalf("reap = %d requeued, %d failed, %v", requeued, failed, err)
	}
	if j, _ := s.GetAny(ctx, "a"); j.Status != job.StatusPending {
		t.Fatalf("a = %s", j.Status)
	}
	if j, _ := s.GetAny(ctx, "b"); j.Status != job.StatusFailed || j.Error == "" {
		t.Fatalf("b = %s %q", j.Status, j.Error)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	t.Parallel()
	s, tb := setup(t)
	ctx := context.Background()
	for i := range 7 {
		tb.create(t, s, fmt.Sprintf("job-%d", i))
	}
	// Ties on created_at are broken by row id: give three jobs the same timestamp.
	if _, err := tb.pool.Exec(ctx, `UPDATE cover_letter_jobs SET created_at = '2026-01-01' WHERE job_id IN ('job-2', 'job-3', 'job-4')`); err != nil {
		t.Fatal(err)
	}
	var got []string
	var after *jobstore.Cursor
	for {
		page, next, err := s.List(ctx, jobstore.ListParams{UserID: tb.user, Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			got = append(got, j.ID)
		}
		if next == nil {
			break
		}
		after = next
	}
	want := []string{"job-6", "job-5", "job-1", "job-0", "job-4", "job-3", "job-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	page, next, err := s.List(ctx, jobstore.ListParams{UserID: tb.user, Limit: 10, Status: job.StatusCompleted})
	if err != nil || len(page) != 0 || next != nil {
		t.Fatalf("completed filter = %v, %v, %v", page, next, err)
	}
}
