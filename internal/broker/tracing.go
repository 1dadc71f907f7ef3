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
func SpanAttributes(op, routingKey, messageID string) []attribute.KeyValue {
	name := map[string]string{OpCreate: "create", OpSend: "publish", OpProcess: "process"}[op]
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemRabbitMQ,
		semconv.MessagingDestinationName(""),
		semconv.MessagingRabbitMQDestinationRoutingKey(routingKey),
		semconv.MessagingOperationTypeKey.String(op),
		semconv.MessagingOperationName(name),
	}
	if messageID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(messageID))
	}
	return attrs
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
