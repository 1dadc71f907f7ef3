package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs a relay or a hand-off until the test ends.
func run(t *testing.T, r interface{ Run(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func dial(t *testing.T, url string) *broker.Connection {
	t.Helper()
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: url, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); conn.Wait() })
	return conn
}

func TestRelayPublishesEachRowOnceAcrossRelays(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	url := testkit.NewVhostURL(t)
	ctx := context.Background()
	const n = 500
	for i := range n {
		if err := outbox.Insert(ctx, pool, broker.Message{
			RoutingKey: job.QueueCompleted, MessageID: fmt.Sprint(i),
			Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			Body:    []byte(fmt.Sprintf(`{"n":%d}`, i)),
		}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	// Three relays, one per process in production, share the outbox.
	for range 3 {
		conn := dial(t, url)
		pub := broker.NewPublisher(conn)
		t.Cleanup(pub.Close)
		run(t, outbox.NewRelay(pool, pub, outbox.RelayConfig{BatchSize: 50, PollInterval: 100 * time.Millisecond}))
	}
	waitRows(t, pool, 0)

	seen := map[string]bool{}
	for _, m := range drain(t, url) {
		if seen[m.MessageId] {
			t.Fatalf("message %s published twice", m.MessageId)
		}
		seen[m.MessageId] = true
		if m.DeliveryMode != amqp.Persistent || m.ContentType != "application/json" || m.Headers["traceparent"] == nil {
			t.Fatalf("message %s: mode %d, type %q, headers %v", m.MessageId, m.DeliveryMode, m.ContentType, m.Headers)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d messages arrived, want %d", len(seen), n)
	}
}

// setup gives a parallel test its own database and vhost, and a publisher there.
func setup(t *testing.T) (*pgxpool.Pool, string, *broker.Publisher) {
	t.Helper()
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	url := testkit.NewVhostURL(t)
	pub := broker.NewPublisher(dial(t, url))
	t.Cleanup(pub.Close)
	return pool, url, pub
}

func TestRelayHoldsDelayedRowsUntilDue(t *testing.T) {
	pool, _, pub := setup(t)
	// The row is there when the relay starts (a row written later comes with a wake-up from
	// its writer, or a NOTIFY: not what this test is about).
	due := time.Now().Add(700 * time.Millisecond)
	if err := outbox.Insert(context.Background(), pool, broker.Message{RoutingKey: job.QueueCompleted, MessageID: "later", Body: []byte("{}")}, due); err != nil {
		t.Fatal(err)
	}
	run(t, outbox.NewRelay(pool, pub, outbox.RelayConfig{PollInterval: 5 * time.Second}))
	time.Sleep(300 * time.Millisecond)
	if n := rows(t, pool); n != 1 {
		t.Fatalf("a delayed row was published early")
	}
	// Published at its due time, without waiting for the 5 s poll (4.3 s after it was due):
	// the bound leaves room for a loaded machine's publish, delete and polling.
	waitRows(t, pool, 0)
	if late := time.Since(due); late > 2*time.Second {
		t.Fatalf("published %s after it was due", late)
	}
}

// failingPublisher refuses every other message, as RabbitMQ does with a nack.
type failingPublisher struct {
	mu    sync.Mutex
	calls int
}

func (p *failingPublisher) Publish(_ context.Context, msgs []broker.Message) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	errs := make([]error, len(msgs))
	for i := range msgs {
		if i%2 == 1 {
			errs[i] = broker.ErrNacked
		}
	}
	return errs
}

func TestRelayKeepsRowsRabbitMQDidNotConfirm(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	ctx := context.Background()
	for i := range 4 {
		if err := outbox.Insert(ctx, pool, broker.Message{RoutingKey: "q", MessageID: fmt.Sprint(i), Body: []byte("{}")}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	relay := outbox.NewRelay(pool, &failingPublisher{}, outbox.RelayConfig{RetryDelay: time.Hour})
	if err := relay.Flush(ctx); !errors.Is(err, broker.ErrNacked) {
		t.Fatalf("Flush = %v, want the nack", err)
	}
	var kept, attempts int
	var lastErr string
	if err := pool.QueryRow(ctx, `SELECT count(*), sum(publish_attempts), max(last_error) FROM outbox_messages`).Scan(&kept, &attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if kept != 2 || attempts != 2 || lastErr == "" {
		t.Fatalf("kept %d rows with %d attempts (%q), want the 2 nacked ones", kept, attempts, lastErr)
	}
	b, err := outbox.ReadBacklog(ctx, pool)
	if err != nil || b.Waiting != 2 || b.OldestDue != 0 || b.Parked != 0 {
		t.Fatalf("Backlog = %+v, %v; want 2 rows waiting, none due", b, err)
	}
}

func rows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitRows(t *testing.T, pool *pgxpool.Pool, want int) {
	t.Helper()
	var n int
	testkit.Eventually(t, 20*time.Second, func() bool { n = rows(t, pool); return n == want },
		func() string { return fmt.Sprintf("outbox holds %d rows, want %d", n, want) })
}

// recordingPublisher is a real Publisher that notes the bytes of each batch it is given.
type recordingPublisher struct {
	outbox.Publisher
	mu      sync.Mutex
	batches []int
	at      []time.Time // when each batch came
}

func (p *recordingPublisher) Publish(ctx context.Context, msgs []broker.Message) []error {
	size := 0
	for _, m := range msgs {
		size += len(m.Body)
	}
	p.mu.Lock()
	p.batches = append(p.batches, size)
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	return p.Publisher.Publish(ctx, msgs)
}

// A batch holds at most MaxBatchBytes of messages (a relay's memory does not grow with
// BatchSize times the largest message); the rows past it go in the next batches, each once.
func TestRelayBoundsABatchByBytes(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	url := testkit.NewVhostURL(t)
	ctx := context.Background()
	body := make([]byte, outbox.MaxBatchBytes*3/8) // two fit in a batch, three do not
	for i := range body {
		body[i] = 'x'
	}
	const n = 6
	for i := range n {
		if err := outbox.Insert(ctx, pool, broker.Message{RoutingKey: job.QueueCompleted, MessageID: fmt.Sprint(i), Body: body}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	pub := &recordingPublisher{Publisher: broker.NewPublisher(dial(t, url))}
	t.Cleanup(pub.Publisher.(*broker.Publisher).Close)
	if err := outbox.NewRelay(pool, pub, outbox.RelayConfig{}).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitRows(t, pool, 0)
	if fmt.Sprint(pub.batches) != fmt.Sprint([]int{2 * len(body), 2 * len(body), 2 * len(body)}) {
		t.Fatalf("batches of %v bytes, want three of two messages (%d bytes each)", pub.batches, len(body))
	}
	ch := testkit.Channel(t, url)
	q, err := ch.QueueDeclarePassive(job.QueueCompleted, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	if err != nil || q.Messages != n {
		t.Fatalf("%d messages in %s (%v), want %d", q.Messages, job.QueueCompleted, err, n)
	}
}

// A woken relay waits its Linger before it looks: the rows written meanwhile go in the same
// batch (one transaction, one wait for the confirms), not one batch each.
func TestRelayLingersSoRowsShareABatch(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	url := testkit.NewVhostURL(t)
	pub := &recordingPublisher{Publisher: broker.NewPublisher(dial(t, url))}
	t.Cleanup(pub.Publisher.(*broker.Publisher).Close)
	const linger = time.Second
	r := outbox.NewRelay(pool, pub, outbox.RelayConfig{Linger: linger, PollInterval: time.Minute})
	run(t, r)
	// Its LISTEN connection wakes it once connected.
	testkit.WaitListening(t, pool, database.NotifyChannel)
	insert := func(i int) {
		t.Helper()
		if err := outbox.Insert(context.Background(), pool, broker.Message{RoutingKey: job.QueueCompleted, MessageID: fmt.Sprint(i), Body: []byte("x")}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		r.Wake()
	}
	// A row whose wakes (the NOTIFY, Wake, the LISTEN's own) are all taken once it is
	// published, however late the relay's first look came under load; then a quiet spell
	// with a second's margin for a wake delivered late.
	insert(0)
	waitRows(t, pool, 0)
	time.Sleep(2*linger + time.Second)
	// The first row in a long while goes out at once: lingering would only delay it.
	insert(1)
	woken := time.Now()
	waitRows(t, pool, 0)
	pub.mu.Lock()
	took := pub.at[1].Sub(woken)
	pub.mu.Unlock()
	if took >= linger {
		t.Fatalf("a row after a quiet spell was published %v after its wake, want no linger", took)
	}
	// Rows that follow it closely share a batch.
	for i := 2; i <= 3; i++ {
		insert(i)
		time.Sleep(linger / 4) // without the linger the row is published by now
	}
	waitRows(t, pool, 0)
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if fmt.Sprint(pub.batches) != "[1 1 2]" {
		t.Fatalf("batches of %v bytes (a byte a row), want the first two rows alone, then one of the next two", pub.batches)
	}
}
