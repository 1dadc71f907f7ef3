package broker_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConnectionRedialsAfterTheBrokerDropsIt(t *testing.T) {
	t.Parallel()
	url := testkit.NewVhostURL(t)
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: url, Name: "test", MinBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close(); conn.Wait() }()
	pub := broker.NewPublisher(conn)
	defer pub.Close()

	publish := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for {
			errs := pub.Publish(ctx, []broker.Message{{RoutingKey: job.QueueCompleted, MessageID: "m", Body: []byte("{}")}})
			if errs[0] == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish never confirmed: %v", errs[0])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	publish()
	if !conn.Connected() {
		t.Fatal("not connected after a confirmed publish")
	}
	testkit.CloseConnections(t, url)
	publish() // through a new connection and channel
	ch := testkit.Channel(t, url)
	q, err := ch.QueueDeclarePassive(job.QueueCompleted, true, false, false, false, nil)
	if err != nil || q.Messages != 2 {
		t.Fatalf("queue holds %d messages (%v), want both", q.Messages, err)
	}
}

func TestDialRejectsABadURLAndCloseStopsRedialing(t *testing.T) {
	t.Parallel()
	if _, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: "http://nope"}); err == nil {
		t.Fatal("a non-AMQP URL was accepted")
	}
	conn, err := broker.Dial(context.Background(), broker.ConnectionConfig{URL: "amqp://guest:guest@127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := conn.Channel(ctx); err == nil {
		t.Fatal("a channel without a broker")
	}
	conn.Close()
	conn.Wait() // returns: Close stops the redial loop
	if _, err := conn.Channel(context.Background()); err == nil {
		t.Fatal("a channel from a closed connection")
	}
}

func TestTopologyDeclaresQuorumQueuesIdempotently(t *testing.T) {
	t.Parallel()
	ch := testkit.Channel(t, testkit.NewVhostURL(t))
	for range 2 {
		if err := broker.Declare(ch, job.Kinds()); err != nil {
			t.Fatal(err)
		}
	}
	// cover-letter.completed is the publisher's to declare (TestCompletedQueueIsBounded).
	for _, q := range []string{job.QueueGenerate, job.QueueDLQ} {
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
			t.Fatalf("queue %s: %v", q, err)
		}
	}
}

func TestHeaderCarrierRoundTripsTraceContext(t *testing.T) {
	t.Parallel()
	traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ts, _ := trace.ParseTraceState("vendor=value")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)

	prop := propagation.TraceContext{}
	headers := amqp.Table{"other": int32(5)}
	prop.Inject(ctx, broker.HeaderCarrier(headers))
	if headers["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || headers["tracestate"] != "vendor=value" {
		t.Fatalf("injected %v", headers)
	}
	if err := headers.Validate(); err != nil {
		t.Fatalf("headers not valid AMQP: %v", err)
	}
	// As RabbitMQ may hand them back: long strings arrive as []byte.
	headers["traceparent"] = []byte(headers["traceparent"].(string))
	got := trace.SpanContextFromContext(prop.Extract(context.Background(), broker.HeaderCarrier(headers)))
	if got.TraceID() != traceID || got.SpanID() != spanID || !got.IsSampled() || got.TraceState().String() != "vendor=value" {
		t.Fatalf("extracted %v", got)
	}
	if broker.HeaderCarrier(headers).Get("other") != "" || len(broker.HeaderCarrier(headers).Keys()) != 3 {
		t.Fatal("non-string headers must read as empty, and all keys be listed")
	}
}
