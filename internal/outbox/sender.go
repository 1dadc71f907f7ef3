package outbox

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/telemetry"
)

// sender publishes outbox messages, the Relay's and the Handoff's, each traced as a PRODUCER
// span "send <queue>", a child of the trace context stored with the message.
type sender struct {
	pub    Publisher
	tel    *telemetry.Telemetry
	tracer trace.Tracer
	server []attribute.KeyValue
}

// newSender publishes through pub; tel nil traces nothing.
func newSender(pub Publisher, log *slog.Logger, tel *telemetry.Telemetry, server []attribute.KeyValue) sender {
	if tel == nil {
		tel = telemetry.New(log, noop.NewTracerProvider())
	}
	return sender{pub: pub, tel: tel, tracer: tel.Tracer("github.com/careerops/jobs/internal/outbox"), server: server}
}

// publish sends msgs and waits for their confirms, one "send" span each. A batch, once
// started, finishes even if its sender is stopping: abandoning confirms that are on their way
// would publish those messages twice.
func (s sender) publish(ctx context.Context, msgs []broker.Message) []error {
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	spans := s.startSpans(pubCtx, msgs)
	errs := s.pub.Publish(pubCtx, msgs)
	for i, span := range spans {
		if errs[i] != nil {
			span.SetStatus(codes.Error, errs[i].Error())
			span.SetAttributes(semconv.ErrorTypeKey.String("publish_failed"))
		}
		span.End()
	}
	return errs
}

// startSpans starts one "send" span per message under the trace context stored with it.
func (s sender) startSpans(ctx context.Context, msgs []broker.Message) []trace.Span {
	spans := make([]trace.Span, len(msgs))
	for i, m := range msgs {
		parent := s.tel.Propagator.Extract(ctx, propagation.MapCarrier(m.Headers))
		_, spans[i] = s.tracer.Start(parent, broker.OpSend+" "+m.RoutingKey, //nolint:spancheck // ended by publish after the confirms
			trace.WithSpanKind(trace.SpanKindProducer))
		if !spans[i].IsRecording() { // not sampled: its attributes would be built for nobody
			continue
		}
		spans[i].SetAttributes(broker.SpanAttributes(broker.OpSend, m.RoutingKey, m.MessageID, s.server...)...)
		if id := m.Headers[job.HeaderJobID]; id != "" {
			spans[i].SetAttributes(telemetry.JobIDKey.String(id))
		}
	}
	return spans
}
