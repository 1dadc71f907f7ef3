package jobstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

type testBundle struct {
	pool *pgxpool.Pool
	user int64
}

// store is the job store as these tests use it: the cover-letter API and the lifecycle of
// the cover-letter kind.
type store struct {
	*jobstore.Store
	*jobstore.Runs
}

func (s store) Get(ctx context.Context, userID int64, id string) (jobstore.Job, error) {
	return s.Store.Get(ctx, userID, id)
}

func (s store) Cancel(ctx context.Context, userID int64, id string, headers map[string]string) (jobstore.Job, error) {
	return s.Store.Cancel(ctx, userID, id, headers)
}

// newStore marks t parallel and gives it a store on a database of its own.
func newStore(t *testing.T) (store, *pgxpool.Pool) {
	t.Helper()
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	s := jobstore.New(pool)
	return store{Store: s, Runs: s.Runs(jobstore.CoverLetters(jobstore.Limits{}, nil))}, pool
}

// letter is a cover letter's result as the worker stores it.
func letter(r jobstore.CoverLetterResult) json.RawMessage {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

// addUser adds a user with email to s and returns its id.
func addUser(t *testing.T, s store, email string) int64 {
	t.Helper()
	id, err := s.AddUser(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// setup is newStore with one user, the owner of the jobs tb.create makes.
func setup(t *testing.T) (store, *testBundle, context.Context) {
	t.Helper()
	s, pool := newStore(t)
	return s, &testBundle{pool: pool, user: addUser(t, s, "owner@example.com")}, context.Background()
}

// claim claims j for a minute and returns the lease.
func claim(t *testing.T, s store, j jobstore.Job) jobstore.Lease {
	t.Helper()
	_, lease, err := s.Claim(context.Background(), claimOf(msgFor(j), false, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

func (tb *testBundle) create(t *testing.T, s store, id string) jobstore.Job {
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

// wantOneOutbox fails the test unless the outbox holds exactly one message for routingKey;
// what names those messages in the failure.
func (tb *testBundle) wantOneOutbox(t *testing.T, routingKey, what string) {
	t.Helper()
	var n int
	if err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages WHERE routing_key = $1`, routingKey).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d %s, want 1", n, what)
	}
}

// claimOf is a claim of m by a worker process that is alive (it has just sent a heartbeat).
func claimOf(m job.GenerateMessage, redelivered bool, leaseFor time.Duration) jobstore.ClaimRequest {
	args, err := json.Marshal(job.CoverLetterArgs{JobDescription: m.JobDescription, CVText: m.CVText, Tone: m.Tone})
	if err != nil {
		panic(err)
	}
	return jobstore.ClaimRequest{Envelope: job.Envelope{JobID: m.JobID, UserID: m.UserID, CreatedAt: m.CreatedAt},
		Args: args, Redelivered: redelivered, LeaseFor: leaseFor}
}

func msgFor(j jobstore.Job) job.GenerateMessage {
	return job.GenerateMessage{JobID: j.ID, UserID: j.UserID, JobDescription: j.JobDescription, CVText: j.CVText, Tone: j.Tone}
}

func TestCreateWritesTheJobAndItsMessageTogether(t *testing.T) {
	s, tb, _ := setup(t)
	j := tb.create(t, s, "job-1")
	if j.Status != job.StatusPending || j.Attempts != 0 || j.Tone != job.ToneConcise || j.TraceParent == "" {
		t.Fatalf("created %+v", j)
	}
	tb.wantOneOutbox(t, job.QueueGenerate, "outbox messages")
	if _, _, err := s.Create(context.Background(), jobstore.NewJob{ID: "job-2", UserID: 424242, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}); !errors.Is(err, jobstore.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	tb.wantOneOutbox(t, job.QueueGenerate, "outbox messages after a refused job")
}

func TestCreateWithIdempotencyKey(t *testing.T) {
	s, tb, ctx := setup(t)
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
	tb.wantOneOutbox(t, job.QueueGenerate, "messages for one idempotent job")
}

func TestClaimGuardsTheJob(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")

	claimed, lease, err := s.Claim(ctx, claimOf(msgFor(j), false, time.Minute))
	if err != nil || claimed.Status != job.StatusProcessing || claimed.Attempts != 1 {
		t.Fatalf("first claim = %+v, %v", claimed, err)
	}
	if _, _, err := s.Claim(ctx, claimOf(msgFor(j), false, time.Minute)); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("a duplicate message claimed a held job: %v", err)
	}
	// A redelivery from a holder that sends no heartbeat (it died): the job is taken over.
	_, lease2, err := s.Claim(ctx, claimOf(msgFor(j), true, time.Minute))
	if err != nil {
		t.Fatalf("redelivery did not take over: %v", err)
	}
	if _, err := s.Complete(ctx, lease, letter(jobstore.CoverLetterResult{CoverLetter: "old"}), nil); !errors.Is(err, jobstore.ErrLeaseLost) {
		t.Fatalf("the old holder completed: %v", err)
	}
	done, err := s.Complete(ctx, lease2, letter(jobstore.CoverLetterResult{CoverLetter: "Dear", PromptTokens: 10, CompletionTokens: 20, Model: "m"}), nil)
	stored, _ := s.GetAny(ctx, j.ID)
	if err != nil || done.Status != job.StatusCompleted || stored.CoverLetter != "Dear" || done.CompletedAt == nil || done.Attempts != 2 {
		t.Fatalf("complete = %+v, %v", done, err)
	}
	for _, redelivered := range []bool{false, true} {
		if _, _, err := s.Claim(ctx, claimOf(msgFor(j), redelivered, time.Minute)); !errors.Is(err, jobstore.ErrNotClaimable) {
			t.Fatalf("a completed job was claimed again (redelivered %v): %v", redelivered, err)
		}
	}
	tb.wantOneOutbox(t, job.QueueCompleted, "completion messages")
}

func TestClaimTakesOverAnExpiredLease(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")
	if _, _, err := s.Claim(ctx, claimOf(msgFor(j), false, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, _, err := s.Claim(ctx, claimOf(msgFor(j), false, time.Minute)); err != nil {
		t.Fatalf("an expired lease was not taken over: %v", err)
	}
}

func TestClaimCreatesAJobFromAForeignMessage(t *testing.T) {
	s, tb, ctx := setup(t)
	m := job.GenerateMessage{JobID: "ext-1", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneFriendly,
		CreatedAt: time.Now().Add(-time.Second)}
	j, _, err := s.Claim(ctx, claimOf(m, false, time.Minute))
	if err != nil || j.UserID != tb.user || j.Status != job.StatusProcessing {
		t.Fatalf("claim of a foreign message = %+v, %v", j, err)
	}
}

// A message from another publisher is not trusted: it cannot create a user, and its createdAt
// (which the per-minute quota counts by) is not believed.
func TestClaimDoesNotTrustAForeignMessage(t *testing.T) {
	s, tb, ctx := setup(t)
	forged := job.GenerateMessage{JobID: "forged-1", UserID: 9001, JobDescription: "x", CVText: "y"}
	if _, _, err := s.Claim(ctx, claimOf(forged, false, time.Minute)); !errors.Is(err, jobstore.ErrUnknownUser) {
		t.Fatalf("claim for a user with no row = %v, want ErrUnknownUser", err)
	}
	if exists, err := s.UserExists(ctx, 9001); err != nil || exists {
		t.Fatalf("the forged message created user 9001 (%v, %v)", exists, err)
	}
	if _, err := s.GetAny(ctx, "forged-1"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("the forged message created a job: %v", err)
	}

	backdated := job.GenerateMessage{JobID: "old-1", UserID: tb.user, JobDescription: "x", CVText: "y",
		CreatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}
	j, _, err := s.Claim(ctx, claimOf(backdated, false, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(j.CreatedAt); age > time.Minute || age < -time.Minute {
		t.Fatalf("the job's createdAt is %s: the message's back-dated createdAt was believed", j.CreatedAt)
	}
}

func TestRetrySchedulesTheJobLater(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")
	lease := claim(t, s, j)
	runAfter := time.Now().Add(time.Hour)
	retried, err := s.Retry(ctx, lease, "HTTP 500", runAfter, nil)
	if err != nil || retried.Status != job.StatusPending || retried.Error != "HTTP 500" {
		t.Fatalf("retry = %+v, %v", retried, err)
	}
	tb.wantScheduled(t, s, j, runAfter)
}

// wantScheduled checks that j's next message, job-1/1, is due at runAfter and that no copy
// of its message runs it before, even as a redelivery.
func (tb *testBundle) wantScheduled(t *testing.T, s store, j jobstore.Job, runAfter time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.Claim(ctx, claimOf(msgFor(j), true, time.Minute)); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("claimed before run_after: %v", err)
	}
	var due time.Time
	if err := tb.pool.QueryRow(ctx, `SELECT available_at FROM outbox_messages WHERE routing_key = $1 AND message_id = 'job-1/1'`, job.QueueGenerate).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if due.Sub(runAfter).Abs() > time.Millisecond {
		t.Fatalf("next message due %v, want %v", due, runAfter)
	}
}

func TestDeferSchedulesTheJobWithoutSpendingAnAttempt(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")
	lease := claim(t, s, j)
	runAfter := time.Now().Add(time.Hour)
	deferred, err := s.Defer(ctx, lease, runAfter, nil)
	if err != nil || deferred.Status != job.StatusPending || deferred.Attempts != 1 || deferred.AttemptsSince != 0 {
		t.Fatalf("defer = %+v, %v; want pending, 1 attempt, none of the budget spent", deferred, err)
	}
	tb.wantScheduled(t, s, j, runAfter)
	// The lease is spent and the job pending: as after a claim a crash undid, ErrClaimLost (the
	// worker gives back its message, which a claim then drops: the job is not due).
	if _, err := s.Defer(ctx, lease, runAfter, nil); !errors.Is(err, jobstore.ErrClaimLost) {
		t.Fatalf("a second defer with the spent lease: %v, want ErrClaimLost", err)
	}
	if _, _, err := s.Claim(ctx, claimOf(msgFor(j), true, time.Minute)); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("the message given back was claimed before the job is due: %v", err)
	}
}

func TestFailAnnouncesAndDeadLetters(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")
	lease := claim(t, s, j)
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
	tb.wantOneOutbox(t, job.QueueCompleted, "failure announcements")
}

func TestRequeueRestoresTheBudget(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")
	if _, err := s.Requeue(ctx, "job-1", nil); !errors.Is(err, jobstore.ErrNotInDLQState) {
		t.Fatalf("requeue of a pending job: %v", err)
	}
	if _, err := s.Requeue(ctx, "nope", nil); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("requeue of an unknown job: %v", err)
	}
	for range 2 {
		_, lease, err := s.Claim(ctx, claimOf(msgFor(j), true, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Retry(ctx, lease, "boom", time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, lease, err := s.Claim(ctx, claimOf(msgFor(j), true, time.Minute))
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
	s, tb, ctx := setup(t)
	a, b := tb.create(t, s, "a"), tb.create(t, s, "b")
	for _, j := range []jobstore.Job{a, b} {
		if _, _, err := s.Claim(ctx, claimOf(msgFor(j), false, time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	// b has used its budget of 2 with one more claim.
	time.Sleep(5 * time.Millisecond)
	if _, _, err := s.Claim(ctx, claimOf(msgFor(b), false, time.Millisecond)); err != nil {
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
	// A job failed by the reaper is dead-lettered like any other failed job, so that
	// careeropsctl dlq and the ops page can requeue it.
	var reason string
	var body []byte
	err = tb.pool.QueryRow(ctx, `SELECT headers->>$1, body FROM outbox_messages WHERE routing_key = $2`,
		job.HeaderDeathReason, job.QueueDLQ).Scan(&reason, &body)
	if err != nil || reason != job.ReasonAttemptsExhausted {
		t.Fatalf("dead letter of b: reason %q, %v", reason, err)
	}
	if m, err := job.DecodeGenerateMessage(body); err != nil || m.JobID != "b" {
		t.Fatalf("dead letter body of b = %+v, %v", m, err)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	s, tb, ctx := setup(t)
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

// Whatever the LLM or a foreign message hands the store (a NUL, invalid UTF-8, 300 kB of
// error text), the outcome is stored: PostgreSQL would refuse the NUL (a data error the
// worker would retry forever), and an unbounded error would end up in headers and logs.
func TestOutcomesAreStoredWhateverTheirText(t *testing.T) {
	s, tb, ctx := setup(t)
	hostile := "bad\x00text\xff" + strings.Repeat("e", 300<<10)

	a := tb.create(t, s, "a")
	_, lease, err := s.Claim(ctx, claimOf(msgFor(a), false, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retry(ctx, lease, hostile, time.Now(), nil); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if _, lease, err = s.Claim(ctx, claimOf(msgFor(a), false, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(ctx, lease, letter(jobstore.CoverLetterResult{CoverLetter: "Dear\x00 Sir\xff"}), nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if j, _ := s.GetAny(ctx, "a"); strings.ContainsRune(j.CoverLetter, 0) || !strings.HasPrefix(j.CoverLetter, "Dear") {
		t.Fatalf("letter = %q", j.CoverLetter)
	}

	b := tb.create(t, s, "b")
	if _, lease, err = s.Claim(ctx, claimOf(msgFor(b), false, time.Minute)); err != nil {
		t.Fatal(err)
	}
	failed, err := s.Fail(ctx, lease, hostile, nil, jobstore.DeadLetter{Body: []byte("{}"), Reason: job.ReasonLLMRejected, Error: hostile,
		Headers: map[string]string{"x-foreign\x00": hostile}})
	if err != nil {
		t.Fatalf("Fail: %v", err)
	}
	if len(failed.Error) > job.MaxErrorBytes || strings.ContainsRune(failed.Error, 0) {
		t.Fatalf("stored error of %d bytes: %.40q", len(failed.Error), failed.Error)
	}
	if err := s.DeadLetterMessage(ctx, "c/dead", jobstore.DeadLetter{Body: []byte("\x00"), Reason: job.ReasonInvalidMessage, Error: hostile,
		Headers: map[string]string{"tone": hostile}}); err != nil {
		t.Fatalf("DeadLetterMessage: %v", err)
	}
	var longest int
	if err := tb.pool.QueryRow(ctx, `SELECT max(length(v)) FROM outbox_messages, jsonb_each_text(headers) AS h(k, v)`).Scan(&longest); err != nil {
		t.Fatal(err)
	}
	if longest > job.MaxErrorBytes {
		t.Fatalf("a header value of %d bytes was stored", longest)
	}
}

// claimWithWaitingCopy claims job-1 for holder, then has a redelivered copy of its message
// (OwnerDeadAfter 15 s) claimed for other, which must wait: ErrLeaseHeld. It returns the job
// and the copy's request.
func claimWithWaitingCopy(ctx context.Context, t *testing.T, s store, tb *testBundle, holder, other uuid.UUID) (jobstore.Job, jobstore.ClaimRequest) {
	t.Helper()
	j := tb.create(t, s, "job-1")
	req := claimOf(msgFor(j), false, time.Minute)
	req.Owner = holder
	if _, _, err := s.Claim(ctx, req); err != nil {
		t.Fatal(err)
	}
	copyReq := claimOf(msgFor(j), true, time.Minute)
	copyReq.Owner, copyReq.OwnerDeadAfter = other, 15*time.Second
	if _, _, err := s.Claim(ctx, copyReq); !errors.Is(err, jobstore.ErrLeaseHeld) {
		t.Fatalf("a redelivery took over a job its holder claimed a moment ago: %v, want ErrLeaseHeld", err)
	}
	return j, copyReq
}

// A redelivered message does not take a job over from a worker that is still alive (its
// broker connection dropped, its LLM call goes on): the copy waits (ErrLeaseHeld) until the
// holder finishes or stops sending heartbeats. One LLM call per job, not two.
func TestRedeliveryWaitsForALiveHolder(t *testing.T) {
	s, tb, ctx := setup(t)
	holder, other := uuid.New(), uuid.New()
	for _, p := range []uuid.UUID{holder, other} {
		if err := s.Heartbeat(ctx, p, "worker"); err != nil {
			t.Fatal(err)
		}
	}
	j, copyReq := claimWithWaitingCopy(ctx, t, s, tb, holder, other)
	// The holder stops sending heartbeats (killed): the copy takes over.
	if _, err := tb.pool.Exec(ctx, `UPDATE worker_processes SET seen_at = now() - interval '1 minute' WHERE id = $1`, holder); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Claim(ctx, copyReq); !errors.Is(err, jobstore.ErrLeaseHeld) {
		t.Fatalf("a redelivery took over a job claimed a moment ago: %v, want ErrLeaseHeld", err)
	}
	if _, err := tb.pool.Exec(ctx, `UPDATE cover_letter_jobs SET started_at = now() - interval '1 minute' WHERE job_id = $1`, j.ID); err != nil {
		t.Fatal(err)
	}
	taken, _, err := s.Claim(ctx, copyReq)
	if err != nil || taken.Attempts != 2 {
		t.Fatalf("takeover from a dead holder = %+v, %v", taken, err)
	}
	// A copy that is not a redelivery never takes over: it is a duplicate.
	if _, _, err := s.Claim(ctx, claimOf(msgFor(j), false, time.Minute)); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("a duplicate claimed a running job: %v", err)
	}
}

// A holder that claimed before its first heartbeat was committed (a worker just started) is
// alive too: a redelivery waits until OwnerDeadAfter has passed since the claim. (The fault
// suite caught one: a new worker's connection died under a broker error, its job was
// redelivered 50 ms later, and two workers ran it.)
func TestRedeliveryWaitsForAHolderNotYetSeen(t *testing.T) {
	s, tb, ctx := setup(t)
	holder, other := uuid.New(), uuid.New() // the holder has no heartbeat yet
	if err := s.Heartbeat(ctx, other, "worker"); err != nil {
		t.Fatal(err)
	}
	j, copyReq := claimWithWaitingCopy(ctx, t, s, tb, holder, other)
	// The holder never shows up: OwnerDeadAfter after its claim, the copy takes over.
	if _, err := tb.pool.Exec(ctx, `UPDATE cover_letter_jobs SET started_at = now() - interval '16 seconds' WHERE job_id = $1`, j.ID); err != nil {
		t.Fatal(err)
	}
	taken, _, err := s.Claim(ctx, copyReq)
	if err != nil || taken.Attempts != 2 {
		t.Fatalf("takeover from a holder never seen = %+v, %v", taken, err)
	}
}

// Jobs created from other publishers' messages count against the user's per-minute quota:
// over it, the job is failed and dead-lettered at once, without an LLM call.
func TestForeignMessagesCountAgainstTheQuota(t *testing.T) {
	s, tb, ctx := setup(t)
	limited := s.Store.Runs(jobstore.CoverLetters(jobstore.Limits{JobsPerMinute: 2}, nil))
	for i := range 3 {
		m := job.GenerateMessage{JobID: fmt.Sprintf("ext-%d", i), UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}
		_, _, err := limited.Claim(ctx, claimOf(m, false, time.Minute))
		var limitErr *jobstore.LimitError
		switch {
		case i < 2 && err != nil:
			t.Fatalf("job %d: %v", i, err)
		case i == 2 && !errors.As(err, &limitErr):
			t.Fatalf("job %d over the quota: %v, want a LimitError", i, err)
		}
	}
	j, err := s.GetAny(ctx, "ext-2")
	if err != nil || j.Status != job.StatusFailed || !strings.Contains(j.Error, "jobs_per_minute") {
		t.Fatalf("the job over the quota = %+v, %v", j, err)
	}
	tb.wantOneOutbox(t, job.QueueDLQ, "dead letters")
}

// A claim whose commit went through but whose answer was lost (the database restarted) is
// asked again with the same token: it gets its own lease back, not "not claimable", which
// would leave the job held by nobody until its lease expired.
func TestClaimIsIdempotentForItsToken(t *testing.T) {
	s, tb, ctx := setup(t)
	j := tb.create(t, s, "job-1")
	req := claimOf(msgFor(j), false, time.Minute)
	req.Token = uuid.New()
	first, lease, err := s.Claim(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, lease2, err := s.Claim(ctx, req)
	if err != nil || lease2 != lease || again.Attempts != first.Attempts {
		t.Fatalf("the same claim again = %+v, %v (attempts %d, first %d)", lease2, err, again.Attempts, first.Attempts)
	}
	other := claimOf(msgFor(j), false, time.Minute)
	other.Token = uuid.New()
	if _, _, err := s.Claim(ctx, other); !errors.Is(err, jobstore.ErrNotClaimable) {
		t.Fatalf("another claim of the held job: %v", err)
	}
}

// TestCreateWithoutLimitsTakesNoUserLock: with no limit to count, a user's creations do not
// queue behind one another: a create goes through while another transaction holds the lock a
// counted create takes on the user's row.
func TestCreateWithoutLimitsTakesNoUserLock(t *testing.T) {
	s, tb, ctx := setup(t)
	tx, err := tb.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test ends it either way
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, tb.user); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, created, err := s.Create(short, jobstore.NewJob{ID: "free", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise}); err != nil || !created {
		t.Fatalf("create while the user's row is locked: created %v, %v", created, err)
	}
	// With a limit on, the create waits for the lock (and so counts exactly).
	limited, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	_, _, err = s.Create(limited, jobstore.NewJob{ID: "counted", UserID: tb.user, JobDescription: "x", CVText: "y", Tone: job.ToneConcise,
		Limits: jobstore.Limits{JobsPerMinute: 100}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a counted create did not wait for the user's lock: %v", err)
	}
}

// TestCreateIdempotencyRace: many concurrent requests with one key make one job; each gets it.
func TestCreateIdempotencyRace(t *testing.T) {
	s, tb, ctx := setup(t)
	const n = 16
	ids, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			j, _, err := s.Create(ctx, jobstore.NewJob{ID: fmt.Sprintf("race-%d", i), UserID: tb.user, JobDescription: "x", CVText: "y",
				Tone: job.ToneConcise, IdempotencyKey: "same", RequestHash: "h"})
			ids[i], errs[i] = j.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("request %d: job %q, %v (first got %q)", i, ids[i], errs[i], ids[0])
		}
	}
	tb.wantOneOutbox(t, job.QueueGenerate, "messages for one idempotent job")
}

// TestSpendStreamToken: a token is spent once, even by racing replicas; stale records go.
func TestSpendStreamToken(t *testing.T) {
	s, tb, ctx := setup(t)
	until := time.Now().Add(time.Minute)
	const n = 8
	won := make(chan bool, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ok, err := s.SpendStreamToken(ctx, "token-a", until)
			if err != nil {
				t.Error(err)
			}
			won <- ok
		})
	}
	wg.Wait()
	close(won)
	spent := 0
	for ok := range won {
		if ok {
			spent++
		}
	}
	if spent != 1 {
		t.Fatalf("token spent %d times by %d racing openings, want once", spent, n)
	}
	if _, err := tb.pool.Exec(ctx, `INSERT INTO stream_token_uses VALUES ('stale', now() - interval '2 minutes')`); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SpendStreamToken(ctx, "token-b", until); err != nil || !ok {
		t.Fatalf("a fresh token: %v, %v", ok, err)
	}
	var stale int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM stream_token_uses WHERE token_id = 'stale'`).Scan(&stale); err != nil || stale != 0 {
		t.Fatalf("stale records left: %d, %v", stale, err)
	}
}
