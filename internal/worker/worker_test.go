package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/testkit"
)

// letters is the kind the tests' workers run: its name labels the worker's metrics.
const letters = job.QueueGenerate

func TestWorkerCompletesAJob(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.stop()

	j := tb.check(t, a, result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"})
	if j.CoverLetter != "Dear team," || j.PromptTokens != 10 || j.CompletionTokens != 3 ||
		j.Model != "test-model" || j.Attempts != 1 || j.TraceParent == "" {
		t.Fatalf("job %+v", j)
	}
	rows := tb.outbox(t)
	if rows[0].MessageID != "job-1/completed" ||
		!strings.Contains(string(rows[0].Body), `"status":"completed"`) || rows[0].Headers["traceparent"] == "" {
		t.Fatalf("outbox %+v, want the completed message with the trace context", rows)
	}
	statuses, text := tb.progress.statuses()
	if !slices.Equal(statuses, []job.Status{job.StatusProcessing, job.StatusCompleted}) || text != "Dear team," {
		t.Fatalf("progress %v %q", statuses, text)
	}
	span := tb.span(t)
	if span[attemptKey].AsInt64() != 1 ||
		span[semconv.ServerAddressKey].AsString() != "rabbitmq.test" || span[semconv.MessagingRabbitMQMessageDeliveryTagKey].AsInt64() != 1 ||
		span[semconv.MessagingMessageIDKey].AsString() != "job-1/0" {
		t.Fatalf("span attributes %v", span)
	}
	if got := tb.spans.Ended()[0].Parent().TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("span's trace %s, want the message's", got)
	}
	m := tb.metrics
	if value(t, m.finishedTotal.WithLabelValues(letters, "completed", "")) != 1 || value(t, m.startedTotal.WithLabelValues(letters)) != 1 ||
		tb.gathered(t, "careerops_worker_llm_tokens_total", "direction", "output") != 3 || value(t, m.inFlight.WithLabelValues(letters)) != 0 ||
		tb.gathered(t, "careerops_worker_llm_request_duration_seconds", "outcome", "ok") != 1 ||
		value(t, m.queueWaits.WithLabelValues(letters).(prometheus.Histogram)) != 1 {
		t.Fatal("metrics do not count the completed job")
	}
}

func TestWorkerFailsAJobTheLLMRejects(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.llm.answer = failing(&llm.Error{StatusCode: 401, Err: errors.New("bad key")})
	tb.start(t, w)
	msg := tb.message(t, "job-1")
	a := tb.deliver(t, msg)
	tb.stop()
	assertFailed(t, tb, a, msg, job.ReasonLLMRejected, "the LLM rejected the request: llm: HTTP 401: bad key")
}

// assertFailed checks what failing a job writes: its announcement, then its message on the
// DLQ as it came, with the reason; and the span and progress that say so.
func assertFailed(t *testing.T, tb *testBundle, a *acker, msg broker.Delivery, reason, errMsg string) {
	t.Helper()
	j := tb.check(t, a, result{settled: "ack", status: job.StatusFailed, outbox: []string{job.QueueCompleted, job.QueueDLQ}, outcome: "failed"})
	if j.Error != errMsg {
		t.Fatalf("job's error %q, want %q", j.Error, errMsg)
	}
	rows := tb.outbox(t)
	dl := rows[1]
	if string(dl.Body) != string(msg.Body) || dl.MessageID != "job-1/dead" || dl.Headers[job.HeaderDeathReason] != reason ||
		dl.Headers[job.HeaderDeathError] != errMsg || dl.Headers[job.HeaderJobID] != "job-1" {
		t.Fatalf("dead letter %+v", dl)
	}
	if !strings.Contains(string(rows[0].Body), `"status":"failed"`) {
		t.Fatalf("announcement %s", rows[0].Body)
	}
	if span := tb.span(t); span[semconv.ErrorTypeKey].AsString() != reason {
		t.Fatalf("span %v", span)
	}
	if statuses, _ := tb.progress.statuses(); !slices.Equal(statuses, []job.Status{job.StatusProcessing, job.StatusFailed}) {
		t.Fatalf("progress %v", statuses)
	}
	if value(t, tb.metrics.finishedTotal.WithLabelValues(letters, "failed", reason)) != 1 ||
		value(t, tb.metrics.deadLetters.WithLabelValues(letters, reason)) != 1 {
		t.Fatal("metrics do not count the failure")
	}
}

func TestWorkerFailsAJobWhoseAttemptsAreSpent(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.MaxAttempts = 1 })
	tb.llm.answer = failing(&llm.Error{StatusCode: 503, Temporary: true, Err: errors.New("overloaded")})
	tb.start(t, w)
	msg := tb.message(t, "job-1")
	a := tb.deliver(t, msg)
	tb.stop()
	assertFailed(t, tb, a, msg, job.ReasonAttemptsExhausted, "gave up after 1 attempts; last error: llm: HTTP 503: overloaded")
}

func TestWorkerRetriesATransientFailureLater(t *testing.T) {
	t.Parallel()
	const base = time.Minute
	tests := []struct {
		name             string
		err              error
		earliest, latest time.Duration
	}{
		{"5xx: the first backoff, jittered", &llm.Error{StatusCode: 502, Temporary: true, Err: errors.New("bad gateway")}, base / 2, base},
		{"429 with a longer Retry-After", &llm.Error{StatusCode: 429, Temporary: true, RetryAfter: time.Hour, Err: errors.New("slow")}, time.Hour, time.Hour},
		{"a network error", errors.New("connection reset by peer"), base / 2, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t, func(c *testConfig) { c.RetryBaseDelay = base })
			tb.llm.answer = failing(tt.err)
			tb.start(t, w)
			before := time.Now()
			a := tb.deliver(t, tb.message(t, "job-1"))
			tb.stop()
			after := time.Now()

			j := tb.check(t, a, result{settled: "ack", status: job.StatusPending, outbox: []string{job.QueueGenerate}, outcome: "retry"})
			if j.Error != tt.err.Error() || j.Attempts != 1 {
				t.Fatalf("job's error %q, attempts %d", j.Error, j.Attempts)
			}
			rows := tb.outbox(t)
			if rows[0].MessageID != "job-1/1" || rows[0].Headers["traceparent"] == "" {
				t.Fatalf("outbox %+v, want the next attempt's message", rows)
			}
			if due := rows[0].AvailableAt; due.Before(before.Add(tt.earliest).Add(-time.Second)) || due.After(after.Add(tt.latest)) {
				t.Fatalf("next attempt due in %v, want within [%v, %v]", due.Sub(before), tt.earliest, tt.latest)
			}
			if n := value(t, tb.metrics.retriedTotal.WithLabelValues(letters)); n != 1 {
				t.Fatalf("retried %v", n)
			}
			if statuses, _ := tb.progress.statuses(); !slices.Equal(statuses, []job.Status{job.StatusProcessing, job.StatusPending}) {
				t.Fatalf("progress %v", statuses)
			}
		})
	}
}

func TestWorkerDefersAJobTheRateBudgetHeldBack(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.MaxAttempts = 1 })
	tb.llm.answer = failing(&llm.Error{Temporary: true, RetryAfter: time.Minute, Err: fmt.Errorf("%w: 1m", llm.ErrDeferred)})
	tb.start(t, w)
	before := time.Now()
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.stop()
	after := time.Now()

	// Not failed on its only attempt: the call was never made.
	j := tb.check(t, a, result{settled: "ack", status: job.StatusPending, outbox: []string{job.QueueGenerate}, outcome: "deferred"})
	if j.Attempts != 1 || j.AttemptsSince != 0 || j.Error != "" {
		t.Fatalf("job's attempts %d (%d of the budget), error %q; want 1, 0, none", j.Attempts, j.AttemptsSince, j.Error)
	}
	rows := tb.outbox(t)
	if due := rows[0].AvailableAt; rows[0].MessageID != "job-1/1" || due.Before(before.Add(time.Minute)) || due.After(after.Add(time.Minute)) {
		t.Fatalf("outbox %+v, want the job's message due in the 1m the budget said", rows)
	}
	if n := value(t, tb.metrics.retriedTotal.WithLabelValues(letters)); n != 0 {
		t.Fatalf("a deferral counted as %v retries", n)
	}
	if n := tb.gathered(t, "careerops_worker_llm_request_duration_seconds", "outcome", "deferred"); n != 1 {
		t.Fatalf("%v LLM calls counted as deferred, want 1", n)
	}
}

func TestWorkerDropsAJobItsUserCancelled(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.llm.answer = hanging
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.llm.waitStarted(t)
	if _, err := tb.store.Cancel(context.Background(), testUser, "job-1", nil); err != nil {
		t.Fatal(err)
	}
	w.CancelJob("job-1")
	w.CancelJob("job-2") // not running here: nothing happens
	a.wait(t)
	tb.stop()

	// Only the cancellation's announcement: no retry, no dead letter.
	tb.check(t, a, result{settled: "ack", status: job.StatusCancelled, outbox: []string{job.QueueCompleted}, outcome: "cancelled"})
}

// A cancellation that reaches the worker while it claims the job is not lost: the job is
// registered as running before its claim, so it is dropped, not run. (The claim is held here by
// a row lock; in production the cancellation's NOTIFY can come right after the claim commits,
// before the claim's answer reaches its delivery.)
func TestWorkerDropsAJobCancelledWhileItWasClaimed(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.llm.answer = hanging
	testkit.InsertJob(t, tb.pool, "job-1", job.StatusPending)
	ctx := context.Background()
	lock, err := tb.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx) //nolint:errcheck // released below
	if _, err := lock.Exec(ctx, `SELECT 1 FROM cover_letter_jobs WHERE job_id = 'job-1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	eventually(t, "the claim waiting for the row lock", func() bool {
		var waiting int
		err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting)
		return err == nil && waiting > 0
	})
	w.CancelJob("job-1")
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	a.wait(t) // without the registration, the hanging LLM call holds it
	tb.stop()
	tb.check(t, a, result{settled: "ack", status: job.StatusProcessing, outcome: "cancelled"})
}

func TestWorkerGivesJobsBackWhenTheDrainTimesOut(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.DrainTimeout = 100 * time.Millisecond })
	tb.llm.answer = hanging
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.llm.waitStarted(t)
	start := time.Now()
	tb.stop()
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Run took %v to return", took)
	}

	// Given back: its message is the requeued one.
	tb.check(t, a, result{settled: "requeue", status: job.StatusPending, outcome: "released"})
}

// The kind's timeout (the cover letters': their LLM timeout) bounds an attempt: one that runs
// past it is a transient failure, retried later, not a job held until its lease expires.
func TestWorkerRetriesAnAttemptThatRunsOutOfTime(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { c.letters.Timeout = 100 * time.Millisecond })
	tb.llm.answer = hanging
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	a.wait(t)
	tb.stop()

	j := tb.check(t, a, result{settled: "ack", status: job.StatusPending, outbox: []string{job.QueueGenerate}, outcome: "retry"})
	if j.Error != "llm: "+errAttemptTimedOut.Error() || j.Attempts != 1 {
		t.Fatalf("job's error %q, attempts %d; want the attempt's timeout, 1", j.Error, j.Attempts)
	}
}

func TestWorkerLetsJobsInFlightFinishOnShutdown(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	release := make(chan struct{})
	tb.llm.answer = func(context.Context, func(string)) (llm.Completion, error) {
		<-release // the context stays alive: only the drain timeout ends it
		return llm.Completion{Text: "late but whole"}, nil
	}
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.llm.waitStarted(t)
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	tb.stop()
	j := tb.check(t, a, result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"})
	if j.CoverLetter != "late but whole" {
		t.Fatalf("letter %q", j.CoverLetter)
	}
}

func TestWorkerRecoversFromPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(tb *testBundle, a *acker)
		want    result
	}{
		{"before the claim: requeued", func(tb *testBundle, _ *acker) { tb.runs.panics = "claim" },
			result{settled: "requeue", status: noJob, outcome: "requeued"}},
		{"in the LLM call: retried", func(tb *testBundle, _ *acker) {
			tb.llm.answer = func(context.Context, func(string)) (llm.Completion, error) { panic("boom") }
		}, result{settled: "ack", status: job.StatusPending, outbox: []string{job.QueueGenerate}, outcome: "retry"}},
		{"after the ack: settled once", func(_ *testBundle, a *acker) { a.panicAfterAck = true },
			result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t)
			msg, a := tb.message(t, "job-1"), newAcker()
			msg.Acknowledger = a
			tt.prepare(tb, a)
			tb.start(t, w)
			tb.deliver(t, msg)
			tb.stop()
			j := tb.check(t, a, tt.want)
			if j.Status == job.StatusPending && j.Error != "internal error: boom" {
				t.Fatalf("job's error %q", j.Error)
			}
			if status := tb.spans.Ended()[0].Status(); status.Code != codes.Error {
				t.Fatalf("span status %+v, want an error", status)
			}
		})
	}
}

func TestWorkerDeadLettersMessagesThatAreNoJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, messageID string
		wantError             string
	}{
		{"not JSON", "hello", "m-1", "body is not a JSON job"},
		{"JSON but not an object", "[1,2]", "m-1", "body is not a JSON job"},
		{"bad job id", `{"jobId":"../etc","userId":1,"jobDescription":"d","cvText":"c"}`, "m-1", "jobId must be"},
		{"no CV", `{"jobId":"job-1","userId":1,"jobDescription":"d"}`, "m-1", "cvText"},
		{"no user, no message id", `{"jobId":"job-1","jobDescription":"d","cvText":"c"}`, "", "userId must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t)
			tb.start(t, w)
			a := tb.deliver(t, broker.Delivery{Body: []byte(tt.body), MessageID: tt.messageID, RoutingKey: job.QueueGenerate,
				Headers: map[string]any{"x-origin": "elsewhere", "x-count": int32(3)}})
			tb.stop()

			if got := a.settled(); !slices.Equal(got, []string{"ack"}) {
				t.Fatalf("settled %v, want one ack", got)
			}
			rows := tb.outbox(t)
			if len(rows) != 1 || rows[0].RoutingKey != job.QueueDLQ || string(rows[0].Body) != tt.body {
				t.Fatalf("outbox %+v, want the message on the DLQ as it came", rows)
			}
			dl := rows[0]
			if dl.Headers[job.HeaderDeathReason] != job.ReasonInvalidMessage || !strings.Contains(dl.Headers[job.HeaderDeathError], tt.wantError) ||
				dl.Headers["x-origin"] != "elsewhere" || dl.Headers["x-count"] != "3" {
				t.Fatalf("dead letter headers %v", dl.Headers)
			}
			if tt.messageID != "" && dl.MessageID != tt.messageID || tt.messageID == "" && !strings.HasPrefix(dl.MessageID, "invalid/") {
				t.Fatalf("dead letter id %q", dl.MessageID)
			}
			if _, err := tb.store.GetAny(context.Background(), "job-1"); !errors.Is(err, jobstore.ErrNotFound) {
				t.Fatalf("an invalid message made a job: %v", err)
			}
			if tb.outcome(t) != "dead_lettered" || value(t, tb.metrics.deadLetters.WithLabelValues(letters, job.ReasonInvalidMessage)) != 1 {
				t.Fatalf("outcome %q", tb.outcome(t))
			}
		})
	}
}

func TestWorkerClaimsOnlyWhatIsClaimable(t *testing.T) {
	t.Parallel()
	duplicate := func(status job.Status) result { return result{settled: "ack", status: status, outcome: "duplicate"} }
	tests := []struct {
		name        string
		finished    bool // the job is completed when the message comes, else processing under a live lease
		redelivered bool
		want        result
	}{
		{"a duplicate of a running job is dropped", false, false, duplicate(job.StatusProcessing)},
		{"a redelivery takes a running job over", false, true,
			result{settled: "ack", status: job.StatusCompleted, outbox: []string{job.QueueCompleted}, outcome: "completed"}},
		{"a duplicate of a finished job is dropped", true, false, duplicate(job.StatusCompleted)},
		{"a redelivery of a finished job is dropped", true, true, duplicate(job.StatusCompleted)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t)
			lease := tb.claim(t)
			if tt.finished {
				first, err := json.Marshal(jobstore.CoverLetterResult{CoverLetter: "first"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tb.runs.Runs.Complete(context.Background(), lease, first, nil); err != nil {
					t.Fatal(err)
				}
				if _, err := tb.pool.Exec(context.Background(), `DELETE FROM outbox_messages`); err != nil {
					t.Fatal(err)
				}
			}
			tb.start(t, w)
			msg := tb.message(t, "job-1")
			msg.Redelivered = tt.redelivered
			a := tb.deliver(t, msg)
			tb.stop()
			tb.check(t, a, tt.want)
		})
	}
}

func TestWorkerDiscardsAResultWhoseLeaseWasLost(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.llm.answer = func(ctx context.Context, _ func(string)) (llm.Completion, error) {
		// Another worker takes the job over meanwhile (its lease expired, say).
		if _, err := tb.pool.Exec(ctx, `UPDATE cover_letter_jobs SET lease_token = gen_random_uuid() WHERE job_id = 'job-1'`); err != nil {
			return llm.Completion{}, err
		}
		return llm.Completion{Text: "too late"}, nil
	}
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.stop()

	// The other worker's lease stands; a lost lease announces nothing.
	if j := tb.check(t, a, result{settled: "ack", status: job.StatusProcessing, outcome: "lease_lost"}); j.CoverLetter != "" {
		t.Fatalf("letter %q stored", j.CoverLetter)
	}
}

func TestWorkerHoldsTheMessageThroughADatabaseOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op         string
		llm        error
		body       string // "": a valid job
		wantStatus job.Status
	}{
		{"claim", nil, "", job.StatusCompleted},
		{"complete", nil, "", job.StatusCompleted},
		{"retry", &llm.Error{StatusCode: 500, Temporary: true, Err: errors.New("oops")}, "", job.StatusPending},
		{"fail", &llm.Error{StatusCode: 400, Err: errors.New("bad request")}, "", job.StatusFailed},
		{"dead-letter", nil, "not a job", ""},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t)
			if tt.llm != nil {
				tb.llm.answer = failing(tt.llm)
			}
			tb.runs.fail(tt.op, 3)
			tb.start(t, w)
			msg := tb.message(t, "job-1")
			if tt.body != "" {
				msg.Body = []byte(tt.body)
			}
			a := tb.deliver(t, msg)
			tb.stop()

			if got := a.settled(); !slices.Equal(got, []string{"ack"}) {
				t.Fatalf("settled %v, want one ack once the database answered", got)
			}
			if n := tb.runs.callsOf(tt.op); n != 4 {
				t.Fatalf("%s called %d times, want 3 failures and a success", tt.op, n)
			}
			if tt.wantStatus != "" {
				if j := tb.job(t, "job-1"); j.Status != tt.wantStatus {
					t.Fatalf("job %s, want %s", j.Status, tt.wantStatus)
				}
			}
		})
	}
}

func TestWorkerGivesBackWhatShutdownInterrupted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, op string
		want     result
	}{
		{"the claim: requeued, nothing taken", "claim", result{settled: "requeue", status: noJob, outcome: "requeued"}},
		{"the outcome: the job given back", "complete", result{settled: "requeue", status: job.StatusPending, outcome: "released"}},
		{"a dead letter: requeued", "dead-letter", result{settled: "requeue", status: noJob, outcome: "requeued"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t, func(c *testConfig) { c.DrainTimeout = 100 * time.Millisecond })
			tb.runs.fail(tt.op, -1)
			tb.start(t, w)
			msg := tb.message(t, "job-1")
			if tt.op == "dead-letter" {
				msg.Body = []byte("not a job")
			}
			a := tb.deliver(t, msg)
			eventually(t, "the database outage", func() bool { return tb.runs.callsOf(tt.op) >= 2 })
			tb.stop()
			tb.check(t, a, tt.want)
		})
	}
}

func TestWorkerReopensItsSubscription(t *testing.T) {
	t.Parallel()
	w, tb := setup(t)
	tb.source.failFirst = 1 // the broker is away at first
	tb.start(t, w)
	first := tb.deliver(t, tb.message(t, "job-1"))
	first.wait(t)
	if up := value(t, tb.metrics.consumer.WithLabelValues(letters)); up != 1 {
		t.Fatalf("consumer_up %v while subscribed", up)
	}
	tb.sub.kill() // the channel dies
	eventually(t, "consumer_up to drop", func() bool { return value(t, tb.metrics.consumer.WithLabelValues(letters)) == 0 })
	second := tb.deliver(t, tb.message(t, "job-2")) // on the next subscription
	second.wait(t)
	tb.stop()

	if n := tb.source.subscribes.Load(); n != 3 {
		t.Fatalf("%d subscribes, want a failed one, then one per subscription", n)
	}
	for _, id := range []string{"job-1", "job-2"} {
		if j := tb.job(t, id); j.Status != job.StatusCompleted {
			t.Fatalf("%s %s", id, j.Status)
		}
	}
	if up := value(t, tb.metrics.consumer.WithLabelValues(letters)); up != 0 {
		t.Fatalf("consumer_up %v after Run returned", up)
	}
}

func TestWorkerReapsJobsWhoseWorkerDied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxAttempts int
		wantStatus  job.Status
		wantOutbox  []string
	}{
		{"requeued while attempts remain", 2, job.StatusPending, []string{job.QueueGenerate}},
		// Announced and dead-lettered, like any job that spent its attempts.
		{"failed once they are spent", 1, job.StatusFailed, []string{job.QueueCompleted, job.QueueDLQ}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, tb := setup(t, func(c *testConfig) { c.ReapInterval = 20 * time.Millisecond; c.MaxAttempts = tt.maxAttempts })
			tb.claim(t)
			// Its worker died an hour ago, long past the reaper's grace.
			if _, err := tb.pool.Exec(context.Background(), `UPDATE cover_letter_jobs SET lease_expires_at = now() - interval '1 hour'`); err != nil {
				t.Fatal(err)
			}
			tb.start(t, w)
			eventually(t, "the reaper", func() bool { return tb.job(t, "job-1").Status == tt.wantStatus })
			tb.stop()
			if keys := routingKeys(tb.outbox(t)); !slices.Equal(keys, tt.wantOutbox) {
				t.Fatalf("outbox %v, want %v", keys, tt.wantOutbox)
			}
		})
	}
}

func TestConfigDefaultsAndLease(t *testing.T) {
	t.Parallel()
	c := Config{Concurrency: -1, Timeout: -time.Second}.withDefaults(kind.Kind{})
	if c.Concurrency != DefaultConcurrency || c.MaxAttempts != DefaultMaxAttempts || c.RetryBaseDelay != DefaultRetryBaseDelay ||
		c.RetryMaxDelay != DefaultRetryMaxDelay || c.Timeout != DefaultTimeout || c.Wait != 0 || c.DrainTimeout != DefaultDrainTimeout ||
		c.ReapInterval != DefaultReapInterval || c.HeartbeatInterval != DefaultHeartbeatInterval || c.Progress == nil || c.Telemetry == nil {
		t.Fatalf("defaults %+v", c)
	}
	if got := (Config{}).LeaseFor(); got != DefaultTimeout+30*time.Second {
		t.Fatalf("default lease %v", got)
	}
	if got := (Config{Timeout: 10 * time.Second}).LeaseFor(); got != 40*time.Second {
		t.Fatalf("lease %v, want the attempt's timeout and a margin to store the result", got)
	}
	if got := (Config{Timeout: 10 * time.Second, Wait: 20 * time.Second}).LeaseFor(); got != time.Minute {
		t.Fatalf("lease %v, want the wait for the shared budget, the attempt's timeout and a margin", got)
	}
	c.Progress.Publish(progress.Event{JobID: "job-1"}) // the nil publisher drops events

	// The kind's own settings come before the defaults, the Config's before the kind's.
	k := kind.Kind{Timeout: 10 * time.Second, Wait: 20 * time.Second, Concurrency: 2,
		Retry: kind.Retry{MaxAttempts: 7, BaseDelay: time.Millisecond, MaxDelay: time.Second}}
	c = Config{}.withDefaults(k)
	if c.Timeout != k.Timeout || c.Wait != k.Wait || c.Concurrency != 2 || c.MaxAttempts != 7 ||
		c.RetryBaseDelay != time.Millisecond || c.RetryMaxDelay != time.Second || c.LeaseFor() != time.Minute {
		t.Fatalf("with the kind's settings %+v", c)
	}
	c = Config{Timeout: 5 * time.Second, Wait: -time.Second, Concurrency: 3, MaxAttempts: 1}.withDefaults(k)
	if c.Timeout != 5*time.Second || c.Wait != k.Wait || c.Concurrency != 3 || c.MaxAttempts != 1 {
		t.Fatalf("the Config's settings over the kind's %+v", c)
	}
}

func TestStringHeadersKeepsEveryHeaderAsText(t *testing.T) {
	t.Parallel()
	got := stringHeaders(map[string]any{"s": "text", "b": []byte("bytes"), "n": int64(42), "t": true})
	want := map[string]string{"s": "text", "b": "bytes", "n": "42", "t": "true"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestWorkerRunsOnTheZeroConfig: no metrics, progress or telemetry configured is no problem.
func TestWorkerRunsOnTheZeroConfig(t *testing.T) {
	t.Parallel()
	w, tb := setup(t, func(c *testConfig) { *c = testConfig{} })
	tb.start(t, w)
	a := tb.deliver(t, tb.message(t, "job-1"))
	tb.stop()
	if got := a.settled(); !slices.Equal(got, []string{"ack"}) {
		t.Fatalf("settled %v, want one ack", got)
	}
	if j := tb.job(t, "job-1"); j.Status != job.StatusCompleted || len(tb.spans.Ended()) != 0 {
		t.Fatalf("job %s, %d spans recorded", j.Status, len(tb.spans.Ended()))
	}
}
