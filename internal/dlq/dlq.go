// Package dlq reads and empties the dead-letter queue, cover-letter.generate.dlq: List shows
// its messages without removing them, Requeue sends them (or one job's) back to work. Both
// careeropsctl and the ops API use it.
//
// Every message is taken with basic.get and acknowledged only once its outcome is stored, so
// the messages a call gets and does not ack (those listed, or other jobs') stay in the DLQ,
// held by the caller's channel until it closes: callers close the channel they pass when the
// call returns.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
)

// MaxList caps List's limit: the messages listed are held, unacked, by the caller's channel
// until it closes.
const MaxList = 10000

// ErrBadLimit is List's answer to a limit outside 1..MaxList.
var ErrBadLimit = errors.New("dlq: limit out of range")

// Entry is one dead-lettered message as an operator sees it.
type Entry struct {
	// JobID is the body's jobId; "" when the body is not a generate message.
	JobID string
	// MessageID is the AMQP message id.
	MessageID string
	// Reason says why it was dead-lettered: the worker's x-careerops-death-reason, or the
	// reason of RabbitMQ's latest x-death (e.g. delivery_limit).
	Reason string
	// Error is the worker's x-careerops-death-error, in full.
	Error string
}

// EntryOf describes a message of the DLQ.
func EntryOf(d amqp.Delivery) Entry {
	return Entry{JobID: jobIDOf(d.Body), MessageID: d.MessageId, Reason: deathReason(d.Headers), Error: deathError(d.Headers)}
}

// List returns the first limit messages of the DLQ, in order, and how many more it holds. It
// takes them with basic.get and never acks them: they return to the DLQ when the caller
// closes ch. limit must be 1..MaxList.
//
// Returning is not free on a quorum queue: RabbitMQ counts it as a delivery (x-delivery-count
// grows by one per List), and 3.x puts returned messages behind the others, so a List of
// fewer than all the messages rotates the queue.
func List(ctx context.Context, ch *amqp.Channel, kind string, limit int) (entries []Entry, more int, err error) {
	if limit < 1 || limit > MaxList {
		return nil, 0, fmt.Errorf("%w: %d is not 1..%d", ErrBadLimit, limit, MaxList)
	}
	for len(entries) < limit {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		d, ok, err := ch.Get(job.DLQ(kind), false)
		if err != nil {
			return nil, 0, fmt.Errorf("get from %s: %w", job.DLQ(kind), err)
		}
		if !ok {
			return entries, 0, nil
		}
		entries = append(entries, EntryOf(d))
		more = int(d.MessageCount)
	}
	return entries, more, nil
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

// publishRaw puts a dead-lettered message back on its kind's queue as it was, minus its
// death headers, and waits for RabbitMQ to confirm it. ch must be in confirm mode.
func publishRaw(ctx context.Context, ch *amqp.Channel, kind string, d amqp.Delivery) error {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		if !isDeathHeader(k) {
			headers[k] = v
		}
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", kind, false, false, amqp.Publishing{
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
		return fmt.Errorf("publish to %s: %w", kind, err)
	}
	acked, err := dc.WaitContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("publish to %s: wait for confirm: %w", kind, err)
	case !acked:
		return fmt.Errorf("publish to %s: %w", kind, broker.ErrNacked)
	}
	return nil
}

// oneLine collapses whitespace (newlines, tabs) so a value fits one line of an error, and cuts
// it to limit characters; "" becomes "-".
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	return s
}
