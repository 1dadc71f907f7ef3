package worker

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/llm"
)

// countCalls makes the test LLM count its calls.
func countCalls(tb *testBundle) *atomic.Int32 {
	var n atomic.Int32
	tb.llm.answer = func(context.Context, func(string)) (llm.Completion, error) {
		n.Add(1)
		return llm.Completion{Text: "Dear team,", Model: "test-model", PromptTokens: 10, CompletionTokens: 3}, nil
	}
	return &n
}

// deadLetterOf returns the one dead letter the outbox holds, failing the test otherwise.
func (tb *testBundle) deadLetterOf(t *testing.T) outboxRow {
	t.Helper()
	var dead []outboxRow
	for _, r := range tb.outbox(t) {
		if r.RoutingKey == job.QueueDLQ {
			dead = append(dead, r)
		}
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters in the outbox, want 1", len(dead))
	}
	return dead[0]
}

// A message the database refuses (a NUL in a text: PostgreSQL's text cannot hold one; invalid
// UTF-8; a body too large to decode safely) is a bad message, not an outage: it is
// dead-lettered at once, with headers clean enough to store, instead of holding a worker slot
// forever while the store "retries".
func TestWorkerDeadLettersWhatTheDatabaseWouldRefuse(t *testing.T) {
	t.Parallel()
	valid := `{"jobId":"job-1","userId":7,"jobDescription":"d","cvText":"c"}`
	tests := []struct {
		name, body string
		headers    map[string]any
		wantError  string
	}{
		{"NUL in the CV", `{"jobId":"job-1","userId":7,"jobDescription":"d","cvText":"a\u0000b"}`, nil, "NUL"},
		{"NUL in the description", `{"jobId":"job-1","userId":7,"jobDescription":"\u0000","cvText":"c"}`, nil, "NUL"},
		{"invalid UTF-8", "{\"jobId\":\"job-1\",\"userId\":7,\"jobDescription\":\"caf\xe9\",\"cvText\":\"c\"}", nil, "UTF-8"},
		{"oversize body", `{"jobId":"job-1","userId":7,"jobDescription":"` + strings.Repeat("x", job.MaxGenerateMessageBytes) + `","cvText":"c"}`, nil, "larger than"},
		{"NUL in a header of an invalid message", `{"jobId":"job-1"}`, map[string]any{"x-note": "a\x00b"}, "userId"},
		{"a 300 kB tone", `{"jobId":"job-1","userId":7,"jobDescription":"d","cvText":"c","tone":"` + strings.Repeat("t", 300<<10) + `"}`, nil, "unknown tone"},
		{"valid, for contrast", valid, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t)
			calls := countCalls(tb)
			tb.start(t, w)
			a := tb.deliver(t, broker.Delivery{Body: []byte(tt.body), MessageID: "m-1", RoutingKey: job.QueueGenerate, Headers: tt.headers})
			tb.stop()
			if tt.wantError == "" {
				tb.check(t, a, result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"})
				return
			}
			tb.check(t, a, result{settled: "ack", status: noJob, outbox: []string{job.QueueDLQ}, outcome: "dead_lettered"})
			dl := tb.deadLetterOf(t)
			if reason, msg := dl.Headers[job.HeaderDeathReason], dl.Headers[job.HeaderDeathError]; reason != job.ReasonInvalidMessage ||
				!strings.Contains(msg, tt.wantError) || len(msg) > job.MaxErrorBytes {
				t.Fatalf("dead letter: reason %q, error of %d bytes %.100q", reason, len(msg), msg)
			}
			if calls.Load() != 0 {
				t.Fatal("the LLM was called")
			}
		})
	}
}

// Only an outage is worth retrying: a data error (SQLSTATE classes 22 and 23) will be the same
// next time, so the store's answer is a verdict and the message goes to the DLQ.
func TestWorkerTakesADataErrorAsAVerdict(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.runs.failWith("claim", -1, &pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding \"UTF8\": 0x00"})
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	done := make(chan struct{})
	go func() { a.wait(t); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker still holds the message: it took the data error for an outage")
	}
	tb.stop()
	tb.check(t, a, result{settled: "ack", status: noJob, outbox: []string{job.QueueDLQ}, outcome: "dead_lettered"})
	if n := tb.runs.callsOf("claim"); n != 1 {
		t.Fatalf("claim called %d times, want 1", n)
	}
}

// A message from another service for a user who does not exist is refused (dead-lettered), not
// run: forging a message must not make a user or spend the LLM budget.
func TestWorkerRefusesAMessageForAnUnknownUser(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	calls := countCalls(tb)
	tb.start(t, w)
	m := generateMessage("job-1")
	m.UserID = 4242
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	a := tb.deliver(t, broker.Delivery{Body: body, MessageID: "job-1/0", RoutingKey: job.QueueGenerate})
	tb.stop()
	tb.check(t, a, result{settled: "ack", status: noJob, outbox: []string{job.QueueDLQ}, outcome: "dead_lettered"})
	if msg := tb.deadLetterOf(t).Headers[job.HeaderDeathError]; !strings.Contains(msg, "unknown user") {
		t.Fatalf("dead letter error %q", msg)
	}
	if calls.Load() != 0 {
		t.Fatal("the LLM was called")
	}
}

// Jobs from other services count against their user's per-minute quota in the worker too:
// over it, the job fails without an LLM call.
func TestWorkerAppliesTheQuotaToForeignMessages(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.letters.JobsPerMinute = 1 })
	calls := countCalls(tb)
	// The user's first job of the minute, from another service too.
	if _, _, err := tb.runs.Runs.Claim(context.Background(), claimRequest(t, "job-0")); err != nil {
		t.Fatal(err)
	}
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.stop()
	j := tb.check(t, a, result{settled: "ack", status: job.StatusFailed,
		outbox: []string{job.QueueCompleted, job.QueueDLQ}, outcome: "quota_exceeded"})
	if !strings.Contains(j.Error, "jobs_per_minute") || calls.Load() != 0 {
		t.Fatalf("job %q after %d LLM calls", j.Error, calls.Load())
	}
}

// A redelivery of a job whose holder is alive (its broker connection dropped mid-call) waits:
// the holder finishes and the copy is dropped, one LLM call in all. Here the store says "held"
// twice, then the holder has finished.
func TestWorkerWaitsWhileALiveWorkerHoldsTheJob(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.HeartbeatInterval = 50 * time.Millisecond })
	calls := countCalls(tb)
	tb.runs.failWith("claim", 2, jobstore.ErrLeaseHeld)
	tb.start(t, w)
	d := tb.message(t, "job-1")
	d.Redelivered = true
	a := tb.deliver(t, d)
	tb.stop()
	tb.check(t, a, result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"})
	if n := tb.runs.callsOf("claim"); n != 3 || calls.Load() != 1 {
		t.Fatalf("%d claims and %d LLM calls, want 3 and 1", n, calls.Load())
	}
}

// A running worker sends heartbeats, and its jobs' leases name it; it forgets itself on exit.
func TestWorkerSendsHeartbeats(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.HeartbeatInterval = 20 * time.Millisecond })
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	a.wait(t)
	var owner, process int
	eventually(t, "a heartbeat", func() bool {
		err := tb.pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM cover_letter_jobs WHERE lease_owner IS NOT NULL OR status = 'completed'),
			(SELECT count(*) FROM worker_processes WHERE seen_at > now() - interval '1 second')`).Scan(&owner, &process)
		return err == nil && process == 1
	})
	tb.stop()
	if err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM worker_processes`).Scan(&process); err != nil || process != 0 {
		t.Fatalf("%d processes left after the stop (%v)", process, err)
	}
}

// A letter that arrives just as the drain timeout ends the job's context is stored, not given
// back: giving it back would make another worker write it again (two successful answers,
// seen once in the rolling-restart fault scenario).
func TestWorkerStoresALetterThatArrivesAsTheDrainEnds(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.DrainTimeout = 100 * time.Millisecond })
	tb.llm.answer = func(ctx context.Context, _ func(string)) (llm.Completion, error) {
		<-ctx.Done() // the drain timeout; the answer was already on its way
		return llm.Completion{Text: "Dear team,", Model: "test-model", PromptTokens: 10, CompletionTokens: 3}, nil
	}
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.llm.waitStarted(t)
	tb.stop()
	tb.check(t, a, result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"})
}
