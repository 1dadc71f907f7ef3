package ctlcmd

import (
	"context"
	"encoding/json"
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
	if err := broker.Declare(s.ch); err != nil {
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

// jobIDOf returns the jobId of a generate-message body, or "" when the body is not one.
func jobIDOf(body []byte) string {
	var m struct {
		JobID string `json:"jobId"`
	}
	if err := json.Unmarshal(body, &m); err != nil || !job.ValidID(m.JobID) {
		return ""
	}
	return m.JobID
}

// deathReason says why a message was dead-lettered: the worker's header, or for a message
// RabbitMQ dead-lettered itself (e.g. at the delivery limit) the reason of its latest x-death.
func deathReason(h amqp.Table) string {
	if r := broker.HeaderCarrier(h).Get(job.HeaderDeathReason); r != "" {
		return r
	}
	deaths, _ := h["x-death"].([]any)
	if len(deaths) == 0 {
		return ""
	}
	death, _ := deaths[0].(amqp.Table)
	return broker.HeaderCarrier(death).Get("reason")
}

// deathError is the error the worker recorded when it dead-lettered a message.
func deathError(h amqp.Table) string {
	return broker.HeaderCarrier(h).Get(job.HeaderDeathError)
}

// isDeathHeader tells the headers that describe a message's dead-lettering, which a requeued
// message must not carry: ours, RabbitMQ's x-death (and the x-first/last-death-* of newer
// versions), and the quorum queue's delivery count.
func isDeathHeader(k string) bool {
	return k == "x-death" || k == "x-delivery-count" ||
		strings.HasPrefix(k, "x-careerops-death-") ||
		strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-")
}

// traceHeaders keeps a message's W3C trace context, to send its successor under it.
func traceHeaders(h amqp.Table) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := broker.HeaderCarrier(h).Get(k); v != "" {
			out[k] = v
		}
	}
	return out
}

// publishRaw puts a dead-lettered message back on the generate queue as it was, minus its
// death headers, and waits for RabbitMQ to confirm it. ch must be in confirm mode.
func publishRaw(ctx context.Context, ch *amqp.Channel, d amqp.Delivery) error {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		if !isDeathHeader(k) {
			headers[k] = v
		}
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", job.QueueGenerate, false, false, amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     d.MessageId,
		CorrelationId: d.CorrelationId,
		Timestamp:     d.Timestamp,
		Type:          d.Type,
		AppId:         d.AppId,
		Headers:       headers,
		Body:          d.Body,
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", job.QueueGenerate, err)
	}
	acked, err := dc.WaitContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("publish to %s: wait for confirm: %w", job.QueueGenerate, err)
	case !acked:
		return fmt.Errorf("publish to %s: %w", job.QueueGenerate, broker.ErrNacked)
	}
	return nil
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
