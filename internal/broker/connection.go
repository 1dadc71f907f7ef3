// Package broker talks to RabbitMQ: a connection that redials itself, the queue topology, a
// publisher with confirms, and the W3C trace-context carrier for AMQP headers.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/pause"
)

// ConnectionConfig configures a Connection.
type ConnectionConfig struct {
	// URL is the AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/.
	URL string
	// Name is shown in the RabbitMQ management UI, e.g. "careerops-worker".
	Name string
	// MinBackoff is the first wait between dial attempts. Defaults to 100ms.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between dial attempts. Defaults to 5s.
	MaxBackoff time.Duration
	// Logger receives connection state changes. Defaults to slog.Default().
	Logger *slog.Logger
	// CompletedMaxLength caps cover-letter.completed, which nobody may consume: past it the
	// oldest messages are dropped. 0: no cap.
	CompletedMaxLength int
	// DeclareCompleted declares cover-letter.completed (DeclareCompleted) on every
	// (re)connection, for the processes that announce completions: the queue exists, with
	// its cap, before the first announcement and before another service declares it.
	DeclareCompleted bool
	// Kinds are the job kinds whose queues (and DLQs) the connection's consumers and
	// publishers declare before they use a channel; nil: every kind (job.Kinds).
	Kinds []string
}

// Connection is an AMQP connection that redials with backoff whenever it is lost, until its
// context ends. Users ask it for channels; a channel dies with its connection, so long-lived
// users (consumers, publishers) open a fresh channel when theirs closes.
type Connection struct {
	cfg    ConnectionConfig
	cancel context.CancelFunc // stops the redial loop

	mu      sync.Mutex
	conn    *amqp.Connection
	ready   chan struct{} // closed while conn is usable
	closed  bool
	stopped chan struct{}
}

// ErrClosed is returned by a Connection that has been closed.
var ErrClosed = errors.New("broker: connection closed")

// Dial starts a Connection that keeps itself connected until ctx ends or Close is called. It
// does not wait for the first connection: readiness follows Connected.
func Dial(ctx context.Context, cfg ConnectionConfig) (*Connection, error) {
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		return nil, fmt.Errorf("broker: RABBITMQ_URL: %w", err)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Kinds == nil {
		cfg.Kinds = job.Kinds()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Connection{cfg: cfg, cancel: cancel, ready: make(chan struct{}), stopped: make(chan struct{})}
	go c.run(ctx)
	return c, nil
}

func (c *Connection) run(ctx context.Context) {
	defer close(c.stopped)
	backoff := c.cfg.MinBackoff
	for {
		conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{
			Properties: amqp.Table{"connection_name": c.cfg.Name},
			Heartbeat:  10 * time.Second,
			Dial:       amqp.DefaultDial(5 * time.Second),
		})
		if err != nil {
			c.cfg.Logger.WarnContext(ctx, "broker: dial failed", slog.String("server", redact(c.cfg.URL)),
				slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
			if pause.For(ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, c.cfg.MaxBackoff)
			continue
		}
		backoff = c.cfg.MinBackoff
		closes := conn.NotifyClose(make(chan *amqp.Error, 1))
		if !c.set(conn) {
			_ = conn.Close()
			return
		}
		c.cfg.Logger.InfoContext(ctx, "broker: connected", slog.String("server", redact(c.cfg.URL)))
		if c.cfg.DeclareCompleted {
			if err := DeclareCompleted(ctx, c); err != nil && ctx.Err() == nil {
				c.cfg.Logger.WarnContext(ctx, "broker: declare the completed queue (the publisher tries again)", slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			c.Close()
			return
		case err := <-closes:
			c.unset()
			if err == nil { // closed by us
				return
			}
			c.cfg.Logger.WarnContext(ctx, "broker: connection lost", slog.String("error", err.Error()))
			// Wait a little (with jitter) so a restarting broker is not hammered by every client at once.
			if pause.For(ctx, c.cfg.MinBackoff+rand.N(c.cfg.MinBackoff)) != nil {
				return
			}
		}
	}
}

func (c *Connection) set(conn *amqp.Connection) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.conn = conn
	close(c.ready)
	return true
}

func (c *Connection) unset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = nil
	if !c.closed {
		c.ready = make(chan struct{})
	}
}

// Connected reports whether the connection is up now.
func (c *Connection) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.conn.IsClosed()
}

// Channel opens a channel, waiting for the connection to be up until ctx ends.
func (c *Connection) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		c.mu.Lock()
		conn, ready, closed := c.conn, c.ready, c.closed
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if conn != nil {
			ch, err := conn.Channel()
			if err == nil {
				return ch, nil
			}
			if !errors.Is(err, amqp.ErrClosed) {
				return nil, fmt.Errorf("broker: open channel: %w", err)
			}
			// The connection died under us; wait for the next one.
			if pause.For(ctx, c.cfg.MinBackoff) != nil {
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("broker: waiting for RabbitMQ: %w", ctx.Err())
		}
	}
}

// Close closes the connection and stops redialing.
func (c *Connection) Close() {
	c.cancel()
	c.mu.Lock()
	conn := c.conn
	if !c.closed {
		c.closed = true
		if c.conn == nil {
			close(c.ready) // wake waiters so they see closed
		}
	}
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// Wait blocks until the connection's goroutine has stopped (after Close or ctx's end).
func (c *Connection) Wait() { <-c.stopped }

// redact drops the password from an AMQP URL for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// ServerAttributes names the broker on spans (server.address, server.port).
func (c *Connection) ServerAttributes() []attribute.KeyValue { return ServerAttributes(c.cfg.URL) }

// Kinds are the job kinds whose queues the connection declares.
func (c *Connection) Kinds() []string { return c.cfg.Kinds }
