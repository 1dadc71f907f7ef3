package ctlcmd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
)

// connectTimeout bounds the wait for RabbitMQ: a CLI should fail, not hang, when it is down.
const connectTimeout = 15 * time.Second

// brokerSession is a connection and one channel on it with the topology declared.
type brokerSession struct {
	conn   *broker.Connection
	ch     *amqp.Channel
	cancel context.CancelFunc
}

// openBroker connects to RabbitMQ, opens a channel and declares the queues (idempotent).
func openBroker(ctx context.Context, rawURL string) (*brokerSession, error) {
	where := "RabbitMQ"
	if uri, err := amqp.ParseURI(rawURL); err == nil {
		where = fmt.Sprintf("RabbitMQ at %s:%d/%s", uri.Host, uri.Port, strings.TrimPrefix(uri.Vhost, "/"))
	}
	// broker.Connection retries every failed dial until its context ends, which suits a
	// service; a CLI should say at once that RabbitMQ is down or refuses the credentials.
	probe, err := amqp.DialConfig(rawURL, amqp.Config{Dial: amqp.DefaultDial(connectTimeout)})
	if err != nil {
		return nil, fmt.Errorf("%s is unreachable: %w", where, err)
	}
	_ = probe.Close()

	// The connection redials until its context ends, also after Close: cancel it on close.
	dialCtx, cancel := context.WithCancel(ctx)
	conn, err := broker.Dial(dialCtx, broker.ConnectionConfig{URL: rawURL, Name: "careeropsctl", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		return nil, err
	}
	s := &brokerSession{conn: conn, cancel: cancel}
	if s.ch, err = s.channel(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := broker.Declare(s.ch, job.Kinds()); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// channel opens another channel on the session's connection.
func (s *brokerSession) channel(ctx context.Context) (*amqp.Channel, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return s.conn.Channel(ctx)
}

// close closes the channel, which returns every message got and not acked to its queue, in
// order, then the connection.
func (s *brokerSession) close() {
	if s.ch != nil {
		_ = s.ch.Close()
	}
	s.conn.Close()
	s.cancel()
	s.conn.Wait()
}

// oneLine collapses whitespace (newlines, tabs) so a value fits a table cell, and cuts it to
// limit characters; "" becomes "-".
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if limit > 0 && utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		s = string(r[:limit-1]) + "…"
	}
	return s
}
