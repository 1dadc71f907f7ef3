package testkit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
)

// Traceparent is the W3C trace context the fixtures put on messages.
const Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Queues is a test's own database and virtual host, with the topology declared and a
// confirm-mode channel for the test's own publishing and inspection: the fixture of the tests
// that read and requeue the dead-letter queue (internal/dlq, careeropsctl's).
type Queues struct {
	URL         string // AMQP URL of the vhost
	DatabaseURL string
	Ch          *amqp.Channel
	Pool        *pgxpool.Pool
}

// NewQueues creates the database and the vhost, both removed when the test ends.
func NewQueues(t testing.TB) *Queues {
	t.Helper()
	q := &Queues{URL: NewVhostURL(t)}
	q.Pool, q.DatabaseURL = NewPool(t)
	q.Ch = Channel(t, q.URL)
	if err := broker.Declare(q.Ch, job.Kinds()); err != nil {
		t.Fatalf("declare: %v", err)
	}
	if err := q.Ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	return q
}

// Publish puts a message on queue and waits for RabbitMQ to confirm it.
func (q *Queues) Publish(t testing.TB, queue, messageID string, headers amqp.Table, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := q.Ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: messageID, Headers: headers, Body: body,
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish: confirmed=%v err=%v", ok, err)
	}
}

// DeadLetter puts a job's generate message (user 1) on the DLQ as the worker does.
func (q *Queues) DeadLetter(t testing.TB, jobID, reason, errMsg string) {
	t.Helper()
	q.Publish(t, job.QueueDLQ, jobID+"/dead", amqp.Table{
		job.HeaderDeathReason: reason, job.HeaderDeathError: errMsg, "traceparent": Traceparent,
	}, GenerateBody(t, jobID, 1))
}

// InsertJob is InsertJob on the test's database.
func (q *Queues) InsertJob(t testing.TB, jobID string, status job.Status) {
	t.Helper()
	InsertJob(t, q.Pool, jobID, status)
}

// QueueLen is QueueLen on the test's channel, waiting up to 5 s.
func (q *Queues) QueueLen(t testing.TB, queue string, want int) int {
	t.Helper()
	return QueueLen(t, q.Ch, queue, want, 5*time.Second)
}

// WantQueueLen checks that queue holds want messages within 5 s (t.Errorf if not), and
// reports whether it does.
func (q *Queues) WantQueueLen(t testing.TB, queue string, want int) bool {
	t.Helper()
	if n := q.QueueLen(t, queue, want); n != want {
		t.Errorf("%s holds %d messages, want %d", queue, n, want)
		return false
	}
	return true
}

// DeadJobs inserts each job with status and puts its generate message on the DLQ as the
// worker does when the job has spent its attempts.
func (q *Queues) DeadJobs(t testing.TB, status job.Status, jobIDs ...string) {
	t.Helper()
	for _, id := range jobIDs {
		q.InsertJob(t, id, status)
		q.DeadLetter(t, id, job.ReasonAttemptsExhausted, "LLM kept failing")
	}
}

// Get takes one message off queue, waiting up to 5 s for it.
func (q *Queues) Get(t testing.TB, queue string) amqp.Delivery {
	t.Helper()
	return GetMessage(t, q.Ch, queue, 5*time.Second)
}

// WantGenerateRows checks (t.Errorf) that the outbox holds want messages of the job for
// the generate queue.
func (q *Queues) WantGenerateRows(t testing.TB, jobID string, want int) {
	t.Helper()
	var n int
	if err := q.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM outbox_messages
		WHERE routing_key = $1 AND convert_from(body, 'UTF8')::jsonb->>'jobId' = $2`,
		job.QueueGenerate, jobID).Scan(&n); err != nil {
		t.Fatalf("count outbox rows: %v", err)
	}
	if n != want {
		t.Errorf("outbox holds %d generate messages for %s, want %d", n, jobID, want)
	}
}

// WantStatus checks (t.Errorf) the job's status in its row.
func (q *Queues) WantStatus(t testing.TB, jobID string, want job.Status) {
	t.Helper()
	var s job.Status
	if err := q.Pool.QueryRow(context.Background(), `SELECT status FROM cover_letter_jobs WHERE job_id = $1`, jobID).Scan(&s); err != nil {
		t.Fatalf("get job %s: %v", jobID, err)
	}
	if s != want {
		t.Errorf("job %s status = %s, want %s", jobID, s, want)
	}
}

// DeadLetterEachKind puts one dead letter of each kind on the DLQ, in this order: the
// worker's for job-worker (attempts exhausted, a long error, returned), the broker's for
// job-broker (x-death, delivery limit) and an invalid message (junk-1, no job id).
func (q *Queues) DeadLetterEachKind(t testing.TB) (longError string) {
	t.Helper()
	longError = "the LLM answered 500\n" + strings.Repeat("x", 200)
	q.Publish(t, job.QueueDLQ, "job-worker/dead", amqp.Table{
		job.HeaderDeathReason: job.ReasonAttemptsExhausted, job.HeaderDeathError: longError,
	}, GenerateBody(t, "job-worker", 1))
	q.Publish(t, job.QueueDLQ, "job-broker/1", amqp.Table{
		"x-death": []any{amqp.Table{"reason": "delivery_limit", "queue": job.QueueGenerate, "count": int64(1)}},
	}, GenerateBody(t, "job-broker", 1))
	q.Publish(t, job.QueueDLQ, "junk-1", amqp.Table{
		job.HeaderDeathReason: job.ReasonInvalidMessage, job.HeaderDeathError: "invalid JSON",
	}, []byte("{not json"))
	return longError
}

// junkBody is the body of the invalid message DeadLetterJunk publishes.
const junkBody = `{not json`

// DeadLetterJunk puts an invalid message (junk-1) on the DLQ with every death header, a
// delivery count and a trace context.
func (q *Queues) DeadLetterJunk(t testing.TB) {
	t.Helper()
	q.Publish(t, job.QueueDLQ, "junk-1", amqp.Table{
		job.HeaderDeathReason: job.ReasonInvalidMessage,
		job.HeaderDeathError:  "invalid JSON",
		"x-death":             []any{amqp.Table{"reason": "rejected", "queue": job.QueueGenerate, "count": int64(1)}},
		"x-delivery-count":    int64(3),
		"traceparent":         Traceparent,
	}, []byte(junkBody))
}

// CheckRepublishedJunk checks that d is DeadLetterJunk's message as it was, minus the death
// headers and the delivery count.
func CheckRepublishedJunk(t testing.TB, d amqp.Delivery) {
	t.Helper()
	if string(d.Body) != junkBody {
		t.Errorf("body = %q, want %q", d.Body, junkBody)
	}
	for _, h := range []string{job.HeaderDeathReason, job.HeaderDeathError, "x-death"} {
		if _, ok := d.Headers[h]; ok {
			t.Errorf("header %s kept: %v", h, d.Headers)
		}
	}
	if n, _ := d.Headers["x-delivery-count"].(int64); n > 1 { // the broker may count this delivery
		t.Errorf("x-delivery-count = %d kept from the DLQ", n)
	}
	if d.Headers["traceparent"] != Traceparent || d.MessageId != "junk-1" ||
		d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent {
		t.Errorf("republished message lost its properties: %+v", d)
	}
}
