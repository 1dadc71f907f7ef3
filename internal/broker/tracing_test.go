package broker_test

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/careerops/jobs/internal/broker"
)

func TestSpanAttributes(t *testing.T) {
	t.Parallel()
	server := broker.ServerAttributes("amqp://guest:guest@mq:5673/")
	tests := []struct {
		op, routingKey, messageID string
		extra                     []attribute.KeyValue
		want                      string
	}{
		{broker.OpCreate, "cover-letter.generate", "job-1/0", nil,
			"messaging.system=rabbitmq messaging.destination.name= messaging.rabbitmq.destination.routing_key=cover-letter.generate messaging.operation.type=create messaging.operation.name=create messaging.message.id=job-1/0"},
		{broker.OpSend, "cover-letter.generate", "job-1/0", server,
			"messaging.system=rabbitmq messaging.destination.name= messaging.rabbitmq.destination.routing_key=cover-letter.generate messaging.operation.type=send messaging.operation.name=publish messaging.message.id=job-1/0 server.address=mq server.port=5673"},
		{broker.OpProcess, "notifications.email", "", server,
			"messaging.system=rabbitmq messaging.destination.name= messaging.rabbitmq.destination.routing_key=notifications.email messaging.operation.type=process messaging.operation.name=process server.address=mq server.port=5673"},
	}
	for _, tt := range tests {
		var got []string
		for _, kv := range broker.SpanAttributes(tt.op, tt.routingKey, tt.messageID, tt.extra...) {
			got = append(got, string(kv.Key)+"="+kv.Value.String())
		}
		if s := fmt.Sprint(got); s != "["+tt.want+"]" {
			t.Errorf("%s %s:\n got %s\nwant [%s]", tt.op, tt.routingKey, s, tt.want)
		}
	}
}
