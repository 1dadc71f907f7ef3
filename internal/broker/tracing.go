package broker

import (
	"net"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// The messaging operations the system traces, as span name prefixes and
// messaging.operation.type values.
const (
	OpCreate  = "create"  // a message is made (written to the outbox)
	OpSend    = "send"    // a message is published
	OpProcess = "process" // a delivered message is handled
)

// SpanAttributes are the OpenTelemetry messaging attributes of an operation on a message sent
// through the default exchange with routingKey (the queue). Per the RabbitMQ conventions,
// messaging.destination.name is the exchange: "" for the default exchange. Span names use
// the routing key instead: "send cover-letter.generate".
//
// extra (e.g. ServerAttributes) are appended, with room for two more of the caller's (the job
// id, the delivery tag): one allocation per span, on every message's path.
func SpanAttributes(op, routingKey, messageID string, extra ...attribute.KeyValue) []attribute.KeyValue {
	var name string
	switch op {
	case OpCreate, OpProcess:
		name = op
	case OpSend:
		name = "publish"
	}
	attrs := make([]attribute.KeyValue, 0, 8+len(extra))
	attrs = append(attrs,
		semconv.MessagingSystemRabbitMQ,
		semconv.MessagingDestinationName(""),
		semconv.MessagingRabbitMQDestinationRoutingKey(routingKey),
		semconv.MessagingOperationTypeKey.String(op),
		semconv.MessagingOperationName(name),
	)
	if messageID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(messageID))
	}
	return append(attrs, extra...)
}

// ServerAttributes name the broker of an AMQP URL: server.address and server.port.
func ServerAttributes(amqpURL string) []attribute.KeyValue {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return nil
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "5672"
	}
	p, _ := strconv.Atoi(port)
	return []attribute.KeyValue{semconv.ServerAddress(host), semconv.ServerPort(p)}
}
