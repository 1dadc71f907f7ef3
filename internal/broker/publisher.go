package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message is one message to publish: always persistent JSON.
type Message struct {
	Exchange   string
	RoutingKey string
	MessageID  string
	Headers    map[string]string
	Body       []byte
}

// ErrNacked means RabbitMQ refused a message (basic.nack): it was not stored.
var ErrNacked = errors.New("broker: message nacked by RabbitMQ")

// ErrRefused means a message can never be published as it is, so it was not sent: RabbitMQ
// would answer it by closing the whole connection (and with it every other channel's work).
var ErrRefused = errors.New("broker: message refused before publishing")

// ErrUnavailable means the broker could not be reached: nothing was sent.
var ErrUnavailable = errors.New("broker: unavailable")

// MaxHeaderFrameBytes bounds a message's properties (its headers, mostly). RabbitMQ's frame
// size is 128 KiB by default and a header frame larger than the frame size is a connection
// error (FRAME_ERROR); the bound leaves room below it.
const MaxHeaderFrameBytes = 64 << 10

// check refuses a message the broker would refuse with a connection error.
func (m Message) check() error {
	if len(m.Exchange) > 255 || len(m.RoutingKey) > 255 || len(m.MessageID) > 255 {
		return fmt.Errorf("%w: exchange, routing key and message id are at most 255 bytes", ErrRefused)
	}
	size := 64 + len(m.MessageID) // the fixed properties, content type and message id
	for k, v := range m.Headers {
		if len(k) > 255 {
			return fmt.Errorf("%w: header name of %d bytes", ErrRefused, len(k))
		}
		size += 1 + len(k) + 1 + 4 + len(v)
	}
	if size > MaxHeaderFrameBytes {
		return fmt.Errorf("%w: its headers take %d bytes, more than %d", ErrRefused, size, MaxHeaderFrameBytes)
	}
	return nil
}

// Publisher publishes persistent messages on a confirm-mode channel and reports which
// RabbitMQ confirmed. It reopens its channel after a failure. Safe for concurrent use;
// batches are published one at a time.
type Publisher struct {
	conn *Connection

	mu sync.Mutex
	ch *amqp.Channel
}

// NewPublisher returns a Publisher on conn.
func NewPublisher(conn *Connection) *Publisher {
	return &Publisher{conn: conn}
}

// Publish sends msgs and waits for their confirms. It returns one error per message: nil when
// RabbitMQ confirmed it (it is then stored in the queue), else why not.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := make([]error, len(msgs))
	ch, err := p.channel(ctx)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return errs
	}
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, m := range msgs {
		if errs[i] = m.check(); errs[i] != nil {
			continue
		}
		headers := make(amqp.Table, len(m.Headers))
		for k, v := range m.Headers {
			headers[k] = v
		}
		confirms[i], errs[i] = ch.PublishWithDeferredConfirmWithContext(ctx, m.Exchange, m.RoutingKey, false, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    m.MessageID,
			Timestamp:    time.Now(),
			Headers:      headers,
			Body:         m.Body,
		})
		if errs[i] != nil {
			errs[i] = fmt.Errorf("broker: publish: %w", errs[i])
		}
	}
	for i, dc := range confirms {
		if dc == nil {
			continue
		}
		acked, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("broker: wait for confirm: %w", err)
		case !acked && ch.IsClosed():
			errs[i] = errors.New("broker: channel closed before the confirm (the message may or may not be stored)")
		case !acked:
			errs[i] = ErrNacked
		}
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrRefused) { // start afresh next time: the channel may be dead or in an unknown state
			_ = p.ch.Close()
			p.ch = nil
			break
		}
	}
	return errs
}

func (p *Publisher) channel(ctx context.Context) (*amqp.Channel, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	ch, err := p.conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	if err := Declare(ch, p.conn.Kinds()); err != nil {
		_ = ch.Close()
		return nil, err
	}
	if err := DeclareCompleted(ctx, p.conn); err != nil {
		_ = ch.Close()
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("broker: confirm mode: %w", err)
	}
	p.ch = ch
	return ch, nil
}

// Close closes the publisher's channel.
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		_ = p.ch.Close()
		p.ch = nil
	}
}
