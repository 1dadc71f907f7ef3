package broker_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// consumerBundle is a Consumer of the generate queue on a vhost of its own, and a plain
// channel to publish and inspect with.
type consumerBundle struct {
	url      string
	conn     *broker.Connection
	ch       *amqp.Channel
	consumer *broker.Consumer
}

// setupConsumer sets a consumerBundle up, with published messages waiting in the queue.
func setupConsumer(t *testing.T, published int) *consumerBundle {
	t.Helper()
	url := testkit.NewVhostURL(t)
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: url, Name: "test", MinBackoff: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); conn.Wait() })
	ch := testkit.Channel(t, url)
	if err := broker.Declare(ch, job.Kinds()); err != nil {
		t.Fatal(err)
	}
	b := &consumerBundle{url: url, conn: conn, ch: ch, consumer: broker.NewConsumer(conn, job.QueueGenerate, "test-consumer")}
	b.publish(t, published)
	return b
}

// publish puts n messages m-0 … m-(n-1) on the generate queue.
func (b *consumerBundle) publish(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		id := "m-" + strconv.Itoa(i)
		if err := b.ch.PublishWithContext(context.Background(), "", job.QueueGenerate, false, false, amqp.Publishing{
			MessageId: id, Headers: amqp.Table{job.HeaderJobID: id}, Body: []byte(`{"n":` + strconv.Itoa(i) + `}`),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// subscribe subscribes until the test ends or the returned cancel is called.
func (b *consumerBundle) subscribe(t *testing.T, prefetch int) (<-chan broker.Delivery, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deliveries, err := b.consumer.Subscribe(ctx, prefetch)
	if err != nil {
		t.Fatal(err)
	}
	return deliveries, cancel
}

// queued is how many messages wait in the generate queue (not counting unacked ones) and
// how many consumers it has.
func (b *consumerBundle) queued(t *testing.T) (messages, consumers int) {
	t.Helper()
	q, err := b.ch.QueueDeclarePassive(job.QueueGenerate, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages, q.Consumers
}

// waitQueued waits until the queue holds messages ready and has consumers.
func (b *consumerBundle) waitQueued(t *testing.T, messages, consumers int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, c := b.queued(t)
		if m == messages && c == consumers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d messages with %d consumers, want %d with %d", m, c, messages, consumers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func next(t *testing.T, deliveries <-chan broker.Delivery) broker.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("the subscription ended")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	return broker.Delivery{}
}

func ack(t *testing.T, d broker.Delivery) {
	t.Helper()
	if err := d.Ack(); err != nil {
		t.Fatalf("ack %s: %v", d.MessageID, err)
	}
}

// stop ends a subscription whose deliveries are all settled: the queue is left empty and
// without consumers.
func (b *consumerBundle) stop(t *testing.T, deliveries <-chan broker.Delivery, cancel context.CancelFunc) {
	t.Helper()
	cancel()
	ended(t, deliveries)
	b.waitQueued(t, 0, 0)
}

// ended waits for the subscription's channel to close, failing on a delivery.
func ended(t *testing.T, deliveries <-chan broker.Delivery) {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if ok {
			t.Fatalf("delivery %s after the end", d.MessageID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription did not end")
	}
}

func TestConsumerDeliversWithinThePrefetchAndSettles(t *testing.T) {
	t.Parallel()
	b := setupConsumer(t, 2)
	deliveries, cancel := b.subscribe(t, 1)

	first := next(t, deliveries)
	if string(first.Body) != `{"n":0}` || first.MessageID != "m-0" || first.RoutingKey != job.QueueGenerate ||
		broker.HeaderCarrier(first.Headers).Get(job.HeaderJobID) != "m-0" || first.Redelivered || first.DeliveryTag == 0 {
		t.Fatalf("delivery %+v", first)
	}
	select {
	case d := <-deliveries:
		t.Fatalf("%s delivered past a prefetch of 1", d.MessageID)
	case <-time.After(200 * time.Millisecond):
	}
	if err := first.Nack(true); err != nil { // back to the queue, delivered again
		t.Fatal(err)
	}
	again := next(t, deliveries)
	if again.MessageID != "m-0" || !again.Redelivered {
		t.Fatalf("after a requeue: %s redelivered=%v, want m-0 again, marked redelivered", again.MessageID, again.Redelivered)
	}
	ack(t, again)
	ack(t, next(t, deliveries))
	b.stop(t, deliveries, cancel)
}

func TestConsumerKeepsItsChannelUntilDeliveriesAreSettled(t *testing.T) {
	t.Parallel()
	b := setupConsumer(t, 3)
	deliveries, cancel := b.subscribe(t, 2)
	inFlight := next(t, deliveries)
	cancel() // shutdown: no new deliveries, the one in flight finishes
	ended(t, deliveries)
	// The third was never delivered; the second, not handed out, comes back when the channel
	// closes. (A quorum queue counts a cancelled consumer until its messages are settled.)
	b.waitQueued(t, 1, 1)

	time.Sleep(100 * time.Millisecond)
	ack(t, inFlight)      // after the subscription ended
	b.waitQueued(t, 2, 0) // the channel closed: the acked message is gone, the other is back
}

func TestConsumerEndsWhenItsChannelDiesAndSubscribesAgain(t *testing.T) {
	t.Parallel()
	b := setupConsumer(t, 0)
	deliveries, _ := b.subscribe(t, 1)
	testkit.CloseConnections(t, b.url) // as a broker restart would
	ended(t, deliveries)

	deliveries, cancel := b.subscribe(t, 1) // waits for the redialed connection
	b.ch = testkit.Channel(t, b.url)
	b.publish(t, 1)
	ack(t, next(t, deliveries))
	b.stop(t, deliveries, cancel)
}

func TestConsumerSubscribeFailsWithoutABroker(t *testing.T) {
	t.Parallel()
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: "amqp://guest:guest@127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close(); conn.Wait() }()
	c := broker.NewConsumer(conn, job.QueueGenerate, "test")
	if attrs := c.ServerAttributes(); len(attrs) != 2 || attrs[0].Value.AsString() != "127.0.0.1" {
		t.Fatalf("server attributes %v", attrs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Subscribe(ctx, 1); err == nil {
		t.Fatal("subscribed without a broker")
	}
}

// TestConsumerSubscribeFailsOnABadQueue: a queue that cannot be consumed fails Subscribe, and
// leaves no channel open.
func TestConsumerSubscribeFailsOnABadQueue(t *testing.T) {
	t.Parallel()
	b := setupConsumer(t, 0)
	c := broker.NewConsumer(b.conn, "no-such-queue", "test")
	if _, err := c.Subscribe(context.Background(), 1); err == nil {
		t.Fatal("consumed a queue that does not exist")
	}
	deliveries, cancel := b.subscribe(t, 1) // the connection is still good
	cancel()
	ended(t, deliveries)
}
