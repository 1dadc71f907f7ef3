package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// serverSpans starts a SERVER span "{method} {route}" for each request under /api/, a child of
// the trace context the request carries if propagator reads one, and writes the span's context
// back into the response's headers the same way. The HTTP attributes are built only for a span
// that records: when nothing samples the request (no exporter) it costs its ids and no more.
func serverSpans(tp trace.TracerProvider, propagator propagation.TextMapPropagator) fiber.Handler {
	tracer := tp.Tracer("github.com/careerops/jobs/internal/httpapi")
	return func(c *fiber.Ctx) error {
		if !strings.HasPrefix(c.Path(), "/api/") {
			return c.Next()
		}
		ctx := propagator.Extract(c.UserContext(), requestHeaders{c})
		ctx, span := tracer.Start(ctx, c.Method(), trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		parent := c.UserContext()
		c.SetUserContext(ctx)
		defer c.SetUserContext(parent)
		if span.IsRecording() {
			span.SetAttributes(
				semconv.HTTPRequestMethodKey.String(c.Method()),
				semconv.URLScheme(c.Protocol()),
				semconv.URLPath(c.Path()),
				semconv.ServerAddress(c.Hostname()),
				semconv.ClientAddress(c.IP()),
				semconv.UserAgentOriginal(string(c.Request().Header.UserAgent())),
				semconv.NetworkProtocolVersion(protocolVersion(c)),
			)
		}
		if err := c.Next(); err != nil {
			span.RecordError(err)
			if err := c.App().Config().ErrorHandler(c, err); err != nil {
				return err
			}
		}
		span.SetName(spanName(c))
		status := c.Response().StatusCode()
		if span.IsRecording() {
			span.SetAttributes(semconv.HTTPRoute(c.Route().Path), semconv.HTTPResponseStatusCode(status))
			if status >= fiber.StatusInternalServerError {
				span.SetStatus(codes.Error, "")
			}
		}
		propagator.Inject(ctx, responseHeaders{c})
		return nil
	}
}

func protocolVersion(c *fiber.Ctx) string {
	if c.Request().Header.IsHTTP11() {
		return "1.1"
	}
	return "1.0"
}

// spanName names a server span "{method} {route}", as the HTTP conventions say.
func spanName(c *fiber.Ctx) string {
	route := c.Route().Path
	if len(route) > 1 {
		route = strings.TrimSuffix(route, "/")
	}
	return c.Method() + " " + route
}

// requestHeaders reads a request's headers for a propagator, without copying them all.
type requestHeaders struct{ c *fiber.Ctx }

func (h requestHeaders) Get(key string) string { return h.c.Get(key) }
func (requestHeaders) Set(string, string)      {}
func (h requestHeaders) Keys() []string {
	var keys []string
	h.c.Request().Header.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// responseHeaders writes a propagator's headers into the response.
type responseHeaders struct{ c *fiber.Ctx }

func (responseHeaders) Get(string) string       { return "" }
func (h responseHeaders) Set(key, value string) { h.c.Set(key, value) }
func (responseHeaders) Keys() []string          { return nil }
