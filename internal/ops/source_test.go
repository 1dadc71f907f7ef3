package ops_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/ops"
	"github.com/careerops/jobs/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testBundle struct {
	url   string
	ch    *amqp.Channel // the test's own, for publishing and inspection
	pool  *pgxpool.Pool
	store *jobstore.Store
}

// setup marks t parallel and returns a Source on a vhost and a database of the test's own.
// declare says whether the topology exists.
func setup(t *testing.T, declare bool) (*ops.Source, *testBundle) {
	t.Helper()
	t.Parallel()
	url := testkit.NewVhostURL(t)
	ch := testkit.Channel(t, url)
	conn := dial(t, url)
	if declare { // as the programs do: all of it, the completed queue by its publisher
		if err := broker.Declare(ch, job.Kinds()); err != nil {
			t.Fatalf("declare: %v", err)
		}
		if err := broker.DeclareCompleted(context.Background(), conn); err != nil {
			t.Fatalf("declare: %v", err)
		}
	}
	pool, _ := testkit.NewPool(t)
	store := jobstore.New(pool)
	return ops.NewSource(conn, store), &testBundle{url: url, ch: ch, pool: pool, store: store}
}

// dial connects to url until the test ends.
func dial(t *testing.T, url string) *broker.Connection {
	t.Helper()
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: url, Name: "ops-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); conn.Wait() })
	return conn
}

func (b *testBundle) publish(t *testing.T, queue string, headers amqp.Table, body string) {
	t.Helper()
	if err := b.ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, MessageId: "m-" + body, Headers: headers, Body: []byte(body),
	}); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// deadLetter puts job id's message on the DLQ as the worker does.
func (b *testBundle) deadLetter(t *testing.T, id string) {
	t.Helper()
	b.publish(t, job.QueueDLQ, amqp.Table{job.HeaderDeathReason: job.ReasonAttemptsExhausted, job.HeaderDeathError: "boom"},
		fmt.Sprintf(`{"jobId":%q,"userId":1}`, id))
}

// failedJob writes a user and a failed job in SQL.
func (b *testBundle) failedJob(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	var user int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, id+"@example.com").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, error_message)
		VALUES ($1, $2, 'failed', 'Engineer', 'CV', 'boom')`, id, user); err != nil {
		t.Fatal(err)
	}
}

// otherKindJob adds a job of another kind to the shared jobs table, in status.
func (b *testBundle) otherKindJob(t *testing.T, id, kind string, status job.Status) {
	t.Helper()
	ctx := context.Background()
	var user int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, id+"@example.com").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO jobs (job_id, user_id, kind, status, args) VALUES ($1, $2, $3, $4, '{}')`,
		id, user, kind, status); err != nil {
		t.Fatal(err)
	}
}

// dlqLen waits briefly (returned messages come back asynchronously) for the DLQ to hold want.
func (b *testBundle) dlqLen(t *testing.T, want int) int {
	t.Helper()
	return testkit.QueueLen(t, b.ch, job.QueueDLQ, want, 5*time.Second)
}

// deadJobs writes each job failed and puts its message on the DLQ, then waits until the DLQ
// holds them all (they are published without confirms).
func (b *testBundle) deadJobs(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		b.failedJob(t, id)
		b.deadLetter(t, id)
	}
	if n := b.dlqLen(t, len(ids)); n != len(ids) {
		t.Fatalf("DLQ holds %d messages, want %d", n, len(ids))
	}
}

func TestQueueStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CountsReadyMessagesAndConsumers", func(t *testing.T) {
		src, b := setup(t, true)
		b.deadLetter(t, "job-1")
		b.deadLetter(t, "job-2")
		b.publish(t, job.QueueGenerate, nil, `{"jobId":"job-3"}`)
		consumer := testkit.Channel(t, b.url)
		if _, err := consumer.Consume(job.QueueCompleted, "", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		want := []ops.QueueStat{
			{Name: job.QueueGenerate, Messages: 1},
			{Name: job.QueueDLQ, Messages: 2},
		}
		for _, k := range job.Kinds()[1:] { // the other kinds' queues, empty
			want = append(want, ops.QueueStat{Name: k}, ops.QueueStat{Name: job.DLQ(k)})
		}
		want = append(want, ops.QueueStat{Name: job.QueueCompleted, Consumers: 1})
		var got []ops.QueueStat
		testkit.Eventually(t, 5*time.Second, func() bool { // queue counters settle asynchronously
			var err error
			if got, err = src.QueueStats(ctx); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(got) == fmt.Sprint(want)
		}, func() string { return fmt.Sprintf("QueueStats = %+v, want %+v", got, want) })
	})

	t.Run("LeavesOutQueuesNotDeclared", func(t *testing.T) {
		src, b := setup(t, false)
		if _, err := b.ch.QueueDeclare(job.QueueCompleted, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
			t.Fatal(err)
		}
		got, err := src.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Name != job.QueueCompleted {
			t.Fatalf("QueueStats = %+v, want the completed queue only", got)
		}
	})

	t.Run("ReadsAgainAfterTheBrokerDroppedItsChannels", func(t *testing.T) {
		src, b := setup(t, true)
		b.publish(t, job.QueueGenerate, nil, `{"jobId":"job-1"}`)
		for range 3 { // channels kept open between calls
			if _, err := src.QueueStats(ctx); err != nil {
				t.Fatal(err)
			}
		}
		testkit.CloseConnections(t, b.url) // closes the test's own connection too
		ch := testkit.Channel(t, b.url)
		if _, err := ch.QueueDelete(job.DLQ(job.Kinds()[1]), false, false, false); err != nil {
			t.Fatal(err)
		}
		var got []ops.QueueStat
		testkit.Eventually(t, 10*time.Second, func() bool {
			var err error
			got, err = src.QueueStats(ctx)
			return err == nil && len(got) == len(broker.Topology(job.Kinds()))-1 && got[0] == ops.QueueStat{Name: job.QueueGenerate, Messages: 1}
		}, func() string { return fmt.Sprintf("after the connection closed: QueueStats = %+v", got) })
	})

	t.Run("BrokerDownIsAPromptError", func(t *testing.T) {
		t.Parallel()
		pool, _ := testkit.NewPool(t)
		src := ops.NewSource(dial(t, "amqp://guest:guest@127.0.0.1:1/"), jobstore.New(pool))
		start := time.Now()
		if _, err := src.QueueStats(ctx); err == nil {
			t.Fatal("QueueStats with RabbitMQ down: err = nil")
		}
		if _, err := src.DeadLetters(ctx, 10); err == nil {
			t.Fatal("DeadLetters with RabbitMQ down: err = nil")
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s to give up", took)
		}
	})
}

func TestTables(t *testing.T) {
	ctx := context.Background()
	src, b := setup(t, true)
	b.failedJob(t, "job-1")
	tables, err := src.Tables(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	if counts := tables.JobsByStatus.Counts; len(counts) != 5 || counts[job.StatusFailed] != 1 || counts[job.StatusPending] != 0 {
		t.Errorf("JobsByStatus = %v", counts)
	}
	if len(tables.JobsByKind) != 0 {
		t.Errorf("JobsByKind with no job of another kind = %v", tables.JobsByKind)
	}
	if f := tables.RecentFailures; len(f) != 1 || f[0].ID != "job-1" || f[0].Error != "boom" {
		t.Errorf("RecentFailures = %+v", f)
	}
	if tables.Outbox.Waiting < 0 || tables.Outbox.Parked != 0 {
		t.Errorf("Outbox = %+v", tables.Outbox)
	}

	b.otherKindJob(t, "other-1", "test.other", job.StatusFailed)
	b.otherKindJob(t, "other-2", "test.other", job.StatusFailed)
	b.otherKindJob(t, "other-3", "test.another", job.StatusPending)
	if tables, err = src.Tables(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if k := tables.JobsByKind; k["test.other"][job.StatusFailed] != 2 || k["test.another"][job.StatusPending] != 1 || len(k) != 2 {
		t.Errorf("JobsByKind = %v", k)
	}
	if len(tables.RecentFailures) != 0 {
		t.Errorf("RecentFailures with a limit of 0 = %+v", tables.RecentFailures)
	}
}

// TestTablesReportsAFailedRoundTrip: a round trip that fails is an error, not zeros.
func TestTablesReportsAFailedRoundTrip(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src, _ := setup(t, true)
	cancel()
	if _, err := src.Tables(ctx, 20); err == nil {
		t.Fatal("Tables with its context cancelled: err = nil")
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	src, b := setup(t, true)
	jobIDs := func(entries []dlq.Entry) string {
		var ids []string
		for _, e := range entries {
			ids = append(ids, cmp.Or(e.JobID, "-"))
		}
		slices.Sort(ids)
		return strings.Join(ids, ",")
	}

	if entries, err := src.DeadLetters(ctx, 50); err != nil || len(entries) != 0 {
		t.Fatalf("empty DLQ: DeadLetters = %+v, %v", entries, err)
	}
	b.deadLetter(t, "job-1")
	b.publish(t, job.QueueDLQ, nil, "not json")
	b.dlqLen(t, 2)
	for range 3 {
		entries, err := src.DeadLetters(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 || entries[0].JobID != "job-1" || entries[0].Reason != job.ReasonAttemptsExhausted ||
			entries[1].JobID != "" || entries[1].MessageID != "m-not json" {
			t.Fatalf("DeadLetters = %+v", entries)
		}
		if n := b.dlqLen(t, 2); n != 2 {
			t.Fatalf("DLQ holds %d messages after a listing, want 2", n)
		}
	}
	// Three looks, one listing: RabbitMQ counted (at most) one delivery of each message.
	peek := testkit.Channel(t, b.url)
	d, ok, err := peek.Get(job.QueueDLQ, false)
	if err != nil || !ok {
		t.Fatalf("get: %v, %v", ok, err)
	}
	if n, _ := d.Headers["x-delivery-count"].(int64); n > 1 {
		t.Errorf("x-delivery-count = %d after three looks, want at most 1", n)
	}
	_ = peek.Close()
	b.dlqLen(t, 2)

	// A new dead letter changes the count: listed again.
	b.deadLetter(t, "job-2")
	b.dlqLen(t, 3)
	entries, err := src.DeadLetters(ctx, 50)
	if err != nil || jobIDs(entries) != "-,job-1,job-2" {
		t.Fatalf("after a new dead letter: DeadLetters = %+v, %v", entries, err)
	}

	// A requeue through the Source lists again, even when the count comes back the same.
	b.failedJob(t, "job-1")
	b.deadLetter(t, "job-3")
	b.dlqLen(t, 4)
	if res, err := src.RequeueDeadLetters(ctx, dlq.Target{JobID: "job-1"}); err != nil || res.Requeued != 1 {
		t.Fatalf("RequeueDeadLetters = %+v, %v", res, err)
	}
	b.dlqLen(t, 3)
	if entries, err = src.DeadLetters(ctx, 50); err != nil || jobIDs(entries) != "-,job-2,job-3" {
		t.Fatalf("after a requeue: DeadLetters = %+v, %v", entries, err)
	}

	if _, err := src.DeadLetters(ctx, 0); !errors.Is(err, dlq.ErrBadLimit) {
		t.Errorf("DeadLetters(0) = %v, want ErrBadLimit", err)
	}
}

func TestRequeueDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("OneJob", func(t *testing.T) {
		src, b := setup(t, true)
		b.deadJobs(t, "job-1", "job-2")
		res, err := src.RequeueDeadLetters(ctx, dlq.Target{JobID: "job-2"})
		if err != nil || res.Requeued != 1 || res.Skipped != 0 {
			t.Fatalf("RequeueDeadLetters = %+v, %v", res, err)
		}
		if j, err := b.store.GetAny(ctx, "job-2"); err != nil || j.Status != job.StatusPending {
			t.Errorf("job-2 = %s, %v; want pending", j.Status, err)
		}
		if n := b.dlqLen(t, 1); n != 1 {
			t.Errorf("DLQ holds %d messages, want job-1's", n)
		}
	})

	t.Run("All", func(t *testing.T) {
		src, b := setup(t, true)
		b.deadJobs(t, "job-1", "job-2")
		res, err := src.RequeueDeadLetters(ctx, dlq.Target{All: true})
		if err != nil || res.Requeued != 2 {
			t.Fatalf("RequeueDeadLetters = %+v, %v", res, err)
		}
		if n := b.dlqLen(t, 0); n != 0 {
			t.Errorf("DLQ holds %d messages, want 0", n)
		}
	})

	t.Run("UnknownJob", func(t *testing.T) {
		src, _ := setup(t, true)
		_, err := src.RequeueDeadLetters(ctx, dlq.Target{JobID: "job-none"})
		var nr *dlq.NotRequeuedError
		if !errors.As(err, &nr) || !errors.Is(err, jobstore.ErrNotFound) {
			t.Fatalf("RequeueDeadLetters = %v, want a NotRequeuedError that is ErrNotFound", err)
		}
	})
}

// TestQueueStatsCountTheDLQWhileItIsListed: the overview asks for the queues and the dead
// letters at once. A listing holds the DLQ's messages until its channel gives them back, and
// RabbitMQ takes them back asynchronously: the queues' count must not report them gone.
func TestQueueStatsCountTheDLQWhileItIsListed(t *testing.T) {
	ctx := context.Background()
	src, b := setup(t, true)
	for n := 1; n <= 10; n++ {
		b.deadLetter(t, fmt.Sprintf("job-%d", n)) // a new dead letter: the next DeadLetters lists again
		if got := b.dlqLen(t, n); got != n {
			t.Fatalf("DLQ holds %d messages, want %d", got, n)
		}
		done := make(chan error, 1)
		go func() {
			entries, err := src.DeadLetters(ctx, 50)
			if err == nil && len(entries) != n {
				err = fmt.Errorf("DeadLetters listed %d, want %d", len(entries), n)
			}
			done <- err
		}()
		for listing := true; listing; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				listing = false // one more look, right after it
			default:
			}
			stats, err := src.QueueStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range stats {
				if q.Name == job.QueueDLQ && q.Messages != n {
					t.Fatalf("with %d dead letters listed at the same time, QueueStats counts %d in the DLQ", n, q.Messages)
				}
			}
		}
	}
}
