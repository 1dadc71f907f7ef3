package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
)

// Delivery is one message a subscription received. Settle it exactly once, with Ack or Nack.
type Delivery struct {
	Body        []byte
	Headers     map[string]any
	MessageID   string
	RoutingKey  string
	Redelivered bool // RabbitMQ delivered it before, to a channel that died unsettled
	DeliveryTag uint64
	// Acknowledger settles it: the subscription it came from, or a test's recorder.
	Acknowledger Acknowledger
}

// Acknowledger settles deliveries by tag, one at a time.
type Acknowledger interface {
	Ack(tag uint64) error
	Nack(tag uint64, requeue bool) error
}

// Ack tells RabbitMQ the message is handled: it is removed from the queue.
func (d Delivery) Ack() error { return d.Acknowledger.Ack(d.DeliveryTag) }

// Nack hands the message back: requeued, or dead-lettered by the queue when requeue is false.
// Either way it counts towards the queue's delivery limit.
func (d Delivery) Nack(requeue bool) error { return d.Acknowledger.Nack(d.DeliveryTag, requeue) }

// Consumer consumes one queue over a Connection, each subscription on a channel of its own.
type Consumer struct {
	conn  *Connection
	queue string
	tag   string
}

// NewConsumer returns a Consumer of queue, shown in RabbitMQ as consumer tag.
func NewConsumer(conn *Connection, queue, tag string) *Consumer {
	return &Consumer{conn: conn, queue: queue, tag: tag}
}

// ServerAttributes names the broker on spans (server.address, server.port).
func (c *Consumer) ServerAttributes() []attribute.KeyValue { return c.conn.ServerAttributes() }

// Subscribe opens a channel (waiting for the connection until ctx ends), declares the
// topology, lets at most prefetch deliveries be unsettled at once, and consumes the queue.
// Deliveries arrive on the returned channel until ctx ends, when the consumer is cancelled (no
// new deliveries), or until the AMQP channel dies; the returned channel is then closed. The
// AMQP channel stays open until every delivery handed out is settled, so jobs in flight still
// ack after shutdown began; deliveries not handed out go back to the queue when it closes.
func (c *Consumer) Subscribe(ctx context.Context, prefetch int) (<-chan Delivery, error) {
	ch, err := c.conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	s := &subscription{ch: ch, tag: c.tag, queue: c.queue, kinds: c.conn.Kinds(), log: c.conn.cfg.Logger, pending: map[uint64]struct{}{}}
	in, err := s.start(prefetch)
	if err != nil {
		s.close(ctx)
		return nil, err
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	out := make(chan Delivery)
	go s.forward(ctx, in, closed, out)
	return out, nil
}

// subscription is one consumer on its channel, and the deliveries it handed out unsettled.
type subscription struct {
	ch         *amqp.Channel
	tag, queue string
	kinds      []string // the queues to declare: the connection's kinds
	log        *slog.Logger

	unsettled sync.WaitGroup
	mu        sync.Mutex
	pending   map[uint64]struct{}
}

func (s *subscription) start(prefetch int) (<-chan amqp.Delivery, error) {
	if err := Declare(s.ch, s.kinds); err != nil {
		return nil, err
	}
	if err := s.ch.Qos(prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("broker: set prefetch: %w", err)
	}
	// Plain Consume, cancelled explicitly: ConsumeWithContext would send basic.cancel when its
	// context ends, possibly on a channel already closed, which RabbitMQ answers by closing
	// the whole connection (CHANNEL_ERROR 504).
	in, err := s.ch.Consume(s.queue, s.tag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("broker: consume %s: %w", s.queue, err)
	}
	return in, nil
}

// forward hands deliveries over until ctx ends or the channel dies, then closes out, waits
// for the deliveries handed out to be settled, and closes the channel.
func (s *subscription) forward(ctx context.Context, in <-chan amqp.Delivery, closed <-chan *amqp.Error, out chan<- Delivery) {
	defer func() {
		close(out)
		s.unsettled.Wait()
		s.close(ctx)
	}()
	for {
		select {
		case <-ctx.Done():
			s.cancel(ctx)
			return
		case err := <-closed:
			s.log.WarnContext(ctx, "broker: consumer's channel closed", slog.String("queue", s.queue), slog.String("error", closeReason(err)))
			return
		case d, ok := <-in:
			if !ok {
				s.log.WarnContext(ctx, "broker: deliveries ended", slog.String("queue", s.queue))
				return
			}
			if !s.hand(ctx, d, out) {
				s.cancel(ctx)
				return
			}
		}
	}
}

// hand passes d on, unless ctx ends first: d then stays unacked and goes back to the queue
// when the channel closes. An ended ctx is checked first: a select with a receiver waiting on
// out would otherwise pick either case at random, and hand out d after the end.
func (s *subscription) hand(ctx context.Context, d amqp.Delivery, out chan<- Delivery) bool {
	if ctx.Err() != nil {
		return false
	}
	s.mu.Lock()
	s.pending[d.DeliveryTag] = struct{}{}
	s.unsettled.Add(1)
	s.mu.Unlock()
	select {
	case out <- Delivery{
		Body: d.Body, Headers: d.Headers, MessageID: d.MessageId, RoutingKey: d.RoutingKey,
		Redelivered: d.Redelivered, DeliveryTag: d.DeliveryTag, Acknowledger: s,
	}:
		return true
	case <-ctx.Done():
		s.settled(d.DeliveryTag)
		return false
	}
}

// Ack acks one delivery of this subscription.
func (s *subscription) Ack(tag uint64) error {
	defer s.settled(tag)
	if err := s.ch.Ack(tag, false); err != nil {
		return fmt.Errorf("broker: ack: %w", err)
	}
	return nil
}

// Nack nacks one delivery of this subscription.
func (s *subscription) Nack(tag uint64, requeue bool) error {
	defer s.settled(tag)
	if err := s.ch.Nack(tag, false, requeue); err != nil {
		return fmt.Errorf("broker: nack: %w", err)
	}
	return nil
}

// settled counts a delivery as settled, once: the channel closes when none is left.
func (s *subscription) settled(tag uint64) {
	s.mu.Lock()
	_, ok := s.pending[tag]
	delete(s.pending, tag)
	s.mu.Unlock()
	if ok {
		s.unsettled.Done()
	}
}

// cancel stops new deliveries on a channel that stays open.
func (s *subscription) cancel(ctx context.Context) {
	if err := s.ch.Cancel(s.tag, false); err != nil {
		s.log.DebugContext(ctx, "broker: cancel consumer", slog.String("queue", s.queue), slog.String("error", err.Error()))
	}
}

func (s *subscription) close(ctx context.Context) {
	if err := s.ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		s.log.DebugContext(ctx, "broker: close consumer's channel", slog.String("queue", s.queue), slog.String("error", err.Error()))
	}
}

// closeReason tells why a channel closed: nil means closed by the client.
func closeReason(err *amqp.Error) string {
	if err == nil {
		return "closed by the client"
	}
	return err.Error()
}
