package httpapi

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spanApp serves /api/jobs/:id (200, or the error its "fail" query asks for) and /healthz
// under serverSpans.
func spanApp(tp trace.TracerProvider, propagator propagation.TextMapPropagator) *fiber.App {
	app := fiber.New()
	app.Use(serverSpans(tp, propagator))
	handler := func(c *fiber.Ctx) error {
		switch c.Query("fail") {
		case "500":
			return errors.New("boom")
		case "404":
			return fiber.ErrNotFound
		}
		return c.SendString(trace.SpanContextFromContext(c.UserContext()).TraceID().String())
	}
	app.Get("/api/jobs/:id", handler)
	app.Get("/healthz", handler)
	return app
}

func TestServerSpans(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name, target, traceparent string
		trust                     bool
		wantSpan                  bool
		wantStatus                int
		wantCode                  codes.Code
		wantTrace                 string // "": a new trace
	}{
		{name: "an API request is a SERVER span named by its route", target: "/api/jobs/j1", wantSpan: true, wantStatus: 200, wantCode: codes.Unset},
		{name: "a 5xx marks the span an error", target: "/api/jobs/j1?fail=500", wantSpan: true, wantStatus: 500, wantCode: codes.Error},
		{name: "a 4xx is the client's error, not the server's", target: "/api/jobs/j1?fail=404", wantSpan: true, wantStatus: 404, wantCode: codes.Unset},
		{name: "a public client cannot choose the trace", target: "/api/jobs/j1", traceparent: parent, wantSpan: true, wantStatus: 200},
		{name: "a trusted gateway's trace is continued", target: "/api/jobs/j1", traceparent: parent, trust: true,
			wantSpan: true, wantStatus: 200, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "probes outside /api/ get no span", target: "/healthz", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			propagator := propagation.NewCompositeTextMapPropagator()
			if tt.trust {
				propagator = propagation.TraceContext{}
			}
			app := spanApp(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), propagator)
			req := httptest.NewRequest("GET", tt.target, nil)
			if tt.traceparent != "" {
				req.Header.Set("traceparent", tt.traceparent)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			spans := rec.Ended()
			if !tt.wantSpan {
				if len(spans) != 0 {
					t.Fatalf("%d spans, want none", len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			attrs := map[attribute.Key]attribute.Value{}
			for _, a := range s.Attributes() {
				attrs[a.Key] = a.Value
			}
			if s.Name() != "GET /api/jobs/:id" || s.SpanKind() != trace.SpanKindServer || s.Status().Code != tt.wantCode {
				t.Fatalf("span %q kind %v status %v", s.Name(), s.SpanKind(), s.Status())
			}
			if attrs["http.route"].AsString() != "/api/jobs/:id" || attrs["http.response.status_code"].AsInt64() != int64(tt.wantStatus) ||
				attrs["http.request.method"].AsString() != "GET" || attrs["url.path"].AsString() != "/api/jobs/j1" {
				t.Fatalf("span attributes %v", s.Attributes())
			}
			switch got := s.SpanContext().TraceID().String(); {
			case tt.wantTrace != "" && got != tt.wantTrace:
				t.Fatalf("trace %s, want the gateway's %s", got, tt.wantTrace)
			case tt.wantTrace == "" && s.Parent().IsValid():
				t.Fatalf("span has a parent %v, want a new trace", s.Parent())
			}
			if tt.trust && resp.Header.Get("traceparent") == "" {
				t.Fatal("a trusted gateway gets no traceparent back")
			}
		})
	}
}

// TestServerSpansWithoutSamplingBuildNothing: with nothing sampled, a request's span has ids
// (the handler sees its trace) but records no attributes.
func TestServerSpansWithoutSamplingBuildNothing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec))
	resp, err := spanApp(tp, propagation.NewCompositeTextMapPropagator()).Test(httptest.NewRequest("GET", "/api/jobs/j1", nil))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 64)
	n, _ := resp.Body.Read(body)
	_ = resp.Body.Close()
	if id, err := trace.TraceIDFromHex(string(body[:n])); err != nil || !id.IsValid() {
		t.Fatalf("the handler saw trace %q, want a valid id", body[:n])
	}
	if got := len(rec.Ended()); got != 0 {
		t.Fatalf("%d spans recorded, want none", got)
	}
}
