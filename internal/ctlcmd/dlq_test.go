package ctlcmd_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// testBundle is a test's own database, virtual host and a confirm-mode channel on it.
type testBundle struct {
	vars  map[string]string
	pool  *pgxpool.Pool
	store *jobstore.Store
	ch    *amqp.Channel
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool, dbURL := testkit.NewPool(t)
	amqpURL := testkit.NewVhostURL(t)
	ch := testkit.Channel(t, amqpURL)
	if err := broker.Declare(ch); err != nil {
		t.Fatalf("declare: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	return &testBundle{
		vars:  map[string]string{"DATABASE_URL": dbURL, "RABBITMQ_URL": amqpURL},
		pool:  pool,
		store: jobstore.New(pool),
		ch:    ch,
	}
}

// publish puts a message on queue and waits for RabbitMQ to confirm it.
func (b *testBundle) publish(t *testing.T, queue, messageID string, headers amqp.Table, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: messageID, Headers: headers, Body: body,
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish: confirmed=%v err=%v", ok, err)
	}
}

// deadLetter puts a job's generate message on the DLQ as the worker does.
func (b *testBundle) deadLetter(t *testing.T, jobID, reason, errMsg string) {
	t.Helper()
	b.publish(t, job.QueueDLQ, jobID+"/dead", amqp.Table{
		job.HeaderDeathReason: reason, job.HeaderDeathError: errMsg, "traceparent": traceparent,
	}, generateBody(t, jobID, 1))
}

func generateBody(t *testing.T, jobID string, userID int64) []byte {
	t.Helper()
	return testkit.GenerateBody(t, jobID, userID)
}

func (b *testBundle) insertJob(t *testing.T, jobID string, status job.Status) {
	t.Helper()
	testkit.InsertJob(t, b.pool, jobID, status)
}

func (b *testBundle) queueLen(t *testing.T, queue string, want int) int {
	t.Helper()
	return testkit.QueueLen(t, b.ch, queue, want, 5*time.Second)
}

// get takes one message off queue, waiting for it briefly.
func (b *testBundle) get(t *testing.T, queue string) amqp.Delivery {
	t.Helper()
	return testkit.GetMessage(t, b.ch, queue, 5*time.Second)
}

// outboxGenerateRows counts the job's messages for the generate queue in the outbox, with the
// trace context given.
func (b *testBundle) outboxGenerateRows(t *testing.T, jobID string) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `
		SELECT count(*) FROM outbox_messages
		WHERE routing_key = $1 AND convert_from(body, 'UTF8')::jsonb->>'jobId' = $2`,
		job.QueueGenerate, jobID).Scan(&n); err != nil {
		t.Fatalf("count outbox rows: %v", err)
	}
	return n
}

func (b *testBundle) status(t *testing.T, jobID string) job.Status {
	t.Helper()
	j, err := b.store.GetAny(context.Background(), jobID)
	if err != nil {
		t.Fatalf("get job %s: %v", jobID, err)
	}
	return j.Status
}

func TestDLQList(t *testing.T) {
	t.Parallel()

	t.Run("EmptyDLQ", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := run(t, map[string]string{"RABBITMQ_URL": b.vars["RABBITMQ_URL"]}, "dlq", "list")
		if res.err != nil {
			t.Fatalf("dlq list: %v", res.err)
		}
		if res.stdout != "DLQ is empty\n" {
			t.Errorf("stdout = %q, want %q", res.stdout, "DLQ is empty\n")
		}
	})

	t.Run("ShowsMessagesAndLeavesThemInTheDLQ", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		longError := "the LLM answered 500\n" + strings.Repeat("x", 200)
		b.publish(t, job.QueueDLQ, "job-worker/dead", amqp.Table{
			job.HeaderDeathReason: job.ReasonAttemptsExhausted, job.HeaderDeathError: longError,
		}, generateBody(t, "job-worker", 1))
		b.publish(t, job.QueueDLQ, "job-broker/1", amqp.Table{
			"x-death": []any{amqp.Table{"reason": "delivery_limit", "queue": job.QueueGenerate, "count": int64(1)}},
		}, generateBody(t, "job-broker", 1))
		b.publish(t, job.QueueDLQ, "junk-1", amqp.Table{
			job.HeaderDeathReason: job.ReasonInvalidMessage, job.HeaderDeathError: "invalid JSON",
		}, []byte("{not json"))

		res := run(t, b.vars, "dlq", "list")
		if res.err != nil {
			t.Fatalf("dlq list: %v", res.err)
		}
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("stdout = %q, want a header and 3 rows", res.stdout)
		}
		for i, want := range [][]string{
			{"JOB_ID", "REASON", "ERROR", "MESSAGE_ID"},
			{"job-worker", job.ReasonAttemptsExhausted, "the LLM answered 500 xxx", "job-worker/dead"},
			{"job-broker", "delivery_limit", "-", "job-broker/1"},
			{"-", job.ReasonInvalidMessage, "invalid JSON", "junk-1"},
		} {
			for _, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		}
		if strings.Contains(lines[1], strings.Repeat("x", 80)) || !strings.Contains(lines[1], "…") {
			t.Errorf("line 1 = %q, want the error cut to 80 characters", lines[1])
		}

		if n := b.queueLen(t, job.QueueDLQ, 3); n != 3 {
			t.Fatalf("DLQ holds %d messages after dlq list, want 3", n)
		}

		// The messages came back in order: a second listing is the same, here as JSON.
		res = run(t, b.vars, "dlq", "list", "--json")
		if res.err != nil {
			t.Fatalf("dlq list --json: %v", res.err)
		}
		var got []map[string]string
		for _, line := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
			var m map[string]string
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q is not a JSON object: %v", line, err)
			}
			got = append(got, m)
		}
		if len(got) != 3 {
			t.Fatalf("got %d JSON lines, want 3: %q", len(got), res.stdout)
		}
		if got[0]["jobId"] != "job-worker" || got[0]["error"] != longError || got[1]["reason"] != "delivery_limit" || got[2]["jobId"] != "" {
			t.Errorf("JSON lines = %v", got)
		}

		res = run(t, b.vars, "dlq", "list", "--limit", "1")
		if res.err != nil {
			t.Fatalf("dlq list --limit 1: %v", res.err)
		}
		if strings.Count(res.stdout, "\n") != 2 || !strings.Contains(res.stderr, "2 more") {
			t.Errorf("--limit 1: stdout = %q, stderr = %q, want one row and a note about 2 more", res.stdout, res.stderr)
		}
		if n := b.queueLen(t, job.QueueDLQ, 3); n != 3 {
			t.Fatalf("DLQ holds %d messages at the end, want 3", n)
		}
	})
}

func TestDLQRequeue(t *testing.T) {
	t.Parallel()

	t.Run("FailedJobByIDGoesToTheOutbox", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.insertJob(t, "job-1", job.StatusFailed)
		b.deadLetter(t, "job-1", job.ReasonAttemptsExhausted, "LLM kept failing")

		res := run(t, b.vars, "dlq", "requeue", "job-1")
		if res.err != nil {
			t.Fatalf("dlq requeue: %v", res.err)
		}
		if want := "requeued job-1\nrequeued 1, skipped 0\n"; res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
		if n := b.queueLen(t, job.QueueDLQ, 0); n != 0 {
			t.Errorf("DLQ holds %d messages, want 0", n)
		}
		if s := b.status(t, "job-1"); s != job.StatusPending {
			t.Errorf("status = %s, want pending", s)
		}
		if n := b.outboxGenerateRows(t, "job-1"); n != 1 {
			t.Errorf("outbox holds %d generate messages for the job, want 1", n)
		}
		var tp string
		if err := b.pool.QueryRow(context.Background(),
			`SELECT coalesce(headers->>'traceparent', '') FROM outbox_messages WHERE routing_key = $1`, job.QueueGenerate).Scan(&tp); err != nil {
			t.Fatal(err)
		}
		if tp != traceparent {
			t.Errorf("outbox message traceparent = %q, want the DLQ message's %q", tp, traceparent)
		}
		if n := b.queueLen(t, job.QueueGenerate, 0); n != 0 {
			t.Errorf("generate queue holds %d messages, want 0: careeropsctl must leave publishing to the relay", n)
		}
	})

	t.Run("ByIDLeavesOtherJobsMessagesInTheDLQ", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.insertJob(t, "job-a", job.StatusFailed)
		b.insertJob(t, "job-b", job.StatusFailed)
		b.deadLetter(t, "job-a", job.ReasonAttemptsExhausted, "boom")
		b.deadLetter(t, "job-b", job.ReasonAttemptsExhausted, "boom")

		res := run(t, b.vars, "dlq", "requeue", "job-b")
		if res.err != nil {
			t.Fatalf("dlq requeue: %v", res.err)
		}
		if want := "requeued job-b\nrequeued 1, skipped 0\n"; res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
		if n := b.queueLen(t, job.QueueDLQ, 1); n != 1 {
			t.Fatalf("DLQ holds %d messages, want job-a's only", n)
		}
		if d := b.get(t, job.QueueDLQ); !strings.Contains(string(d.Body), `"job-a"`) {
			t.Errorf("DLQ kept %s, want job-a's message", d.Body)
		}
		if s := b.status(t, "job-a"); s != job.StatusFailed {
			t.Errorf("job-a status = %s, want failed", s)
		}
	})

	t.Run("JobThatIsNoLongerFailedIsSkipped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.insertJob(t, "job-done", job.StatusCompleted)
		b.deadLetter(t, "job-done", job.ReasonAttemptsExhausted, "boom")

		res := run(t, b.vars, "dlq", "requeue", "--all")
		if res.err != nil {
			t.Fatalf("dlq requeue: %v", res.err)
		}
		if want := "skipped job-done (status is completed)\nrequeued 0, skipped 1\n"; res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
		if n := b.queueLen(t, job.QueueDLQ, 0); n != 0 {
			t.Errorf("DLQ holds %d messages, want 0", n)
		}
		if n := b.outboxGenerateRows(t, "job-done"); n != 0 {
			t.Errorf("outbox holds %d generate messages, want 0", n)
		}
	})

	t.Run("FailedJobWithoutDLQMessageIsRequeuedFromTheDatabase", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.insertJob(t, "job-gone", job.StatusFailed)

		res := run(t, b.vars, "dlq", "requeue", "job-gone")
		if res.err != nil {
			t.Fatalf("dlq requeue: %v", res.err)
		}
		if want := "requeued job-gone (no DLQ message; requeued from the database)\nrequeued 1, skipped 0\n"; res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
		if s := b.status(t, "job-gone"); s != job.StatusPending {
			t.Errorf("status = %s, want pending", s)
		}
		if n := b.outboxGenerateRows(t, "job-gone"); n != 1 {
			t.Errorf("outbox holds %d generate messages, want 1", n)
		}
	})

	t.Run("UnknownOrUnfailedJobIDIsAnError", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.insertJob(t, "job-ok", job.StatusCompleted)
		for id, want := range map[string]string{
			"job-none": "job job-none is neither in the DLQ nor in the database",
			"job-ok":   "job job-ok is not in the DLQ and its status is completed",
		} {
			res := run(t, b.vars, "dlq", "requeue", id)
			requireOneLineError(t, res.err)
			if !strings.Contains(res.err.Error(), want) {
				t.Errorf("err = %q, want it to contain %q", res.err, want)
			}
		}
	})

	t.Run("AllRepublishesANonJobWithoutDeathHeaders", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := []byte(`{not json`)
		b.publish(t, job.QueueDLQ, "junk-1", amqp.Table{
			job.HeaderDeathReason: job.ReasonInvalidMessage,
			job.HeaderDeathError:  "invalid JSON",
			"x-death":             []any{amqp.Table{"reason": "rejected", "queue": job.QueueGenerate, "count": int64(1)}},
			"traceparent":         traceparent,
		}, body)

		res := run(t, b.vars, "dlq", "requeue", "--all")
		if res.err != nil {
			t.Fatalf("dlq requeue --all: %v", res.err)
		}
		if want := "requeued message junk-1 (not a job; republished the message)\nrequeued 1, skipped 0\n"; res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
		d := b.get(t, job.QueueGenerate)
		if string(d.Body) != string(body) {
			t.Errorf("body = %q, want %q", d.Body, body)
		}
		for _, h := range []string{job.HeaderDeathReason, job.HeaderDeathError, "x-death"} {
			if _, ok := d.Headers[h]; ok {
				t.Errorf("header %s kept: %v", h, d.Headers)
			}
		}
		if d.Headers["traceparent"] != traceparent || d.MessageId != "junk-1" ||
			d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent {
			t.Errorf("republished message lost its properties: %+v", d)
		}
		if n := b.queueLen(t, job.QueueDLQ, 0); n != 0 {
			t.Errorf("DLQ holds %d messages, want 0", n)
		}
	})

	t.Run("AllRepublishesAJobWithoutARow", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.deadLetter(t, "job-foreign", "delivery_limit", "")
		b.insertJob(t, "job-x", job.StatusFailed)
		b.deadLetter(t, "job-x", job.ReasonLLMRejected, "content policy")

		res := run(t, b.vars, "dlq", "requeue", "--all")
		if res.err != nil {
			t.Fatalf("dlq requeue --all: %v", res.err)
		}
		want := "requeued job-foreign (no job row; republished the message)\nrequeued job-x\nrequeued 2, skipped 0\n"
		if res.stdout != want {
			t.Errorf("stdout = %q, want %q", res.stdout, want)
		}
		if d := b.get(t, job.QueueGenerate); !strings.Contains(string(d.Body), `"job-foreign"`) {
			t.Errorf("generate queue got %s, want job-foreign's message", d.Body)
		}
		if n := b.outboxGenerateRows(t, "job-x"); n != 1 {
			t.Errorf("outbox holds %d generate messages for job-x, want 1", n)
		}
	})

	t.Run("AllOnAnEmptyDLQ", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := run(t, b.vars, "dlq", "requeue", "--all")
		if res.err != nil {
			t.Fatalf("dlq requeue --all: %v", res.err)
		}
		if res.stdout != "DLQ is empty\n" {
			t.Errorf("stdout = %q, want %q", res.stdout, "DLQ is empty\n")
		}
	})
}
