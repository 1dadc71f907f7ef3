package jobstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/testkit"
)

// handOff gives s a running hand-off (its rows held an hour: no relay could take them) on a
// vhost of the test's own with the queues declared; it returns a channel there and a count
// of the relay's wake-ups.
func handOff(t *testing.T, s store, tb *testBundle) (*amqp.Channel, *atomic.Int32) {
	t.Helper()
	url := testkit.NewVhostURL(t)
	ch := testkit.Channel(t, url)
	if err := broker.Declare(ch, job.Kinds()); err != nil {
		t.Fatal(err)
	}
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: url, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); conn.Wait() })
	pub := broker.NewPublisher(conn)
	t.Cleanup(pub.Close)
	s.HandOff(runUntilCleanup(t, outbox.NewHandoff(tb.pool, pub, outbox.HandoffConfig{Hold: time.Hour})))
	wakes := new(atomic.Int32)
	s.OnOutboxWrite(func() { wakes.Add(1) })
	return ch, wakes
}

// wantOutbox waits until the outbox holds want rows.
func (tb *testBundle) wantOutbox(t *testing.T, want int) {
	t.Helper()
	var rows int
	testkit.Eventually(t, 10*time.Second, func() bool {
		err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages`).Scan(&rows)
		return err == nil && rows == want
	}, func() string { return fmt.Sprintf("%d outbox rows, want %d", rows, want) })
}

// The store's transactions hand their messages due at once to the hand-off, with no relay:
// a job's message (a create on its own), its completion's. A message due later (a retry's)
// is the relay's, which is woken for it, and for nothing else.
func TestStoreHandsOffWhatItsTransactionsWrite(t *testing.T) {
	s, tb, ctx := setup(t)
	ch, wakes := handOff(t, s, tb)

	j := tb.create(t, s, "done")
	if _, err := s.Complete(ctx, claim(t, s, j), []byte(`{"coverLetter":"Dear"}`), nil); err != nil {
		t.Fatal(err)
	}
	tb.wantOutbox(t, 0)
	if d := testkit.GetMessage(t, ch, job.QueueGenerate, 5*time.Second); d.MessageId == "" {
		t.Fatalf("the job's message has no id: %+v", d)
	}
	if d := testkit.GetMessage(t, ch, job.QueueCompleted, 5*time.Second); d.MessageId != "done/completed" {
		t.Fatalf("completion message %q, want done/completed", d.MessageId)
	}
	if n := wakes.Load(); n != 0 {
		t.Fatalf("the relay was woken %d times for rows the hand-off published", n)
	}

	r := tb.create(t, s, "retried")
	tb.wantOutbox(t, 0)
	if _, err := s.Retry(ctx, claim(t, s, r), "try again", time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	tb.wantOutbox(t, 1)
	if n := wakes.Load(); n != 1 {
		t.Fatalf("the relay was woken %d times, want once, for the retry's message", n)
	}
}
