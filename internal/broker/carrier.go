package broker

import amqp "github.com/rabbitmq/amqp091-go"

// HeaderCarrier adapts AMQP headers to OpenTelemetry's propagation.TextMapCarrier, so the W3C
// traceparent and tracestate travel with a message.
type HeaderCarrier amqp.Table

// Get returns the string value of a header, or "" when absent or not a string.
func (c HeaderCarrier) Get(key string) string {
	switch v := c[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Set sets a header.
func (c HeaderCarrier) Set(key, value string) { c[key] = value }

// Keys lists the headers.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
