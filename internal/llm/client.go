// Package llm asks an OpenAI-compatible chat-completions API for text, through go-openai, and
// sorts its failures into transient ones (worth retrying, with the server's Retry-After) and
// permanent ones.
package llm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/telemetry"
)

// Config configures a Client.
type Config struct {
	// BaseURL of the API, e.g. https://api.openai.com/v1 or http://127.0.0.1:8090/v1.
	BaseURL string
	// APIKey is sent as a bearer token. Never logged.
	APIKey string
	// Model is the model name sent with each request.
	Model string
	// Timeout bounds one call, response included. Defaults to 60s.
	Timeout time.Duration
	// MaxTokens caps the length of the answer. Defaults to 1024.
	MaxTokens int
	// Transport is the HTTP transport; defaults to http.DefaultTransport. Tracing wraps it.
	Transport http.RoundTripper
	// Telemetry traces each call as a CLIENT span "chat {model}" (GenAI semantic
	// conventions) over the HTTP client span. Defaults to none.
	Telemetry *telemetry.Telemetry
}

// Client calls the chat-completions API.
type Client struct {
	api    *openai.Client
	cfg    Config
	tracer trace.Tracer
	server []attribute.KeyValue
}

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 1024
	}
	if cfg.Transport == nil {
		// Keep connections for every call in flight: the default keeps 2 per host, and each
		// new one to the LLM is a TLS handshake.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		cfg.Transport = t
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.New(slog.Default(), noop.NewTracerProvider())
	}
	transport := otelhttp.NewTransport(retryAfterRecorder{next: cfg.Transport},
		otelhttp.WithTracerProvider(cfg.Telemetry.TracerProvider), otelhttp.WithPropagators(cfg.Telemetry.Propagator))
	oc.HTTPClient = &http.Client{Transport: transport}
	return &Client{
		api:    openai.NewClientWithConfig(oc),
		cfg:    cfg,
		tracer: cfg.Telemetry.Tracer("github.com/careerops/jobs/internal/llm"),
		server: serverAttributes(oc.BaseURL),
	}
}

// Completion is the model's answer and what it cost.
type Completion struct {
	ID               string
	Text             string
	Model            string
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
}

// Complete asks the model once. Failures are *Error.
func (c *Client) Complete(ctx context.Context, system, user string) (Completion, error) {
	return c.Stream(ctx, system, user, nil)
}

// Stream asks the model once; with onDelta it streams the answer, calling onDelta with each
// piece as it arrives (the Completion still holds the whole text). Failures are *Error.
func (c *Client) Stream(ctx context.Context, system, user string, onDelta func(string)) (out Completion, err error) {
	ctx, span := c.tracer.Start(ctx, "chat "+c.cfg.Model, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append([]attribute.KeyValue{
			semconv.GenAIOperationNameChat,
			semconv.GenAIProviderNameOpenAI,
			semconv.GenAIRequestModel(c.cfg.Model),
			semconv.GenAIRequestMaxTokens(c.cfg.MaxTokens),
		}, c.server...)...))
	if c.cfg.Telemetry.CaptureContent {
		span.SetAttributes(semconv.GenAIInputMessagesKey.String(messagesJSON(
			[2]string{"system", system}, [2]string{"user", user})))
	}
	defer func() { endSpan(span, out, err, c.cfg.Telemetry.CaptureContent) }()

	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var retryAfter time.Duration
	callCtx = context.WithValue(callCtx, retryAfterKey{}, &retryAfter)

	req := openai.ChatCompletionRequest{
		Model: c.cfg.Model,
		// max_tokens, not max_completion_tokens: OpenAI still takes it for chat models and
		// most OpenAI-compatible servers know only this one.
		MaxTokens: c.cfg.MaxTokens, //nolint:staticcheck // SA1019: see above
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: system},
			{Role: openai.ChatMessageRoleUser, Content: user},
		},
	}
	if onDelta != nil {
		out, err = c.stream(callCtx, req, onDelta)
		switch {
		case err == nil:
			return out, nil
		case ctx.Err() != nil:
			return Completion{}, ctx.Err()
		default:
			return Completion{}, classify(err, callCtx.Err() != nil, c.cfg.Timeout, retryAfter)
		}
	}
	resp, err := c.api.CreateChatCompletion(callCtx, req)
	if err != nil {
		if ctx.Err() != nil { // the caller gave up (shutdown), not the API
			return Completion{}, ctx.Err()
		}
		return Completion{}, classify(err, callCtx.Err() != nil, c.cfg.Timeout, retryAfter)
	}
	if len(resp.Choices) == 0 || strings.TrimSpace(resp.Choices[0].Message.Content) == "" {
		return Completion{}, &Error{Temporary: true, Err: errors.New("the model returned an empty answer")}
	}
	return Completion{
		ID:               resp.ID,
		Text:             strings.TrimSpace(resp.Choices[0].Message.Content),
		Model:            resp.Model,
		FinishReason:     string(resp.Choices[0].FinishReason),
		PromptTokens:     resp.Usage.PromptTokens,
		CompletionTokens: resp.Usage.CompletionTokens,
	}, nil
}

// stream reads a streamed answer, handing each piece to onDelta.
func (c *Client) stream(ctx context.Context, req openai.ChatCompletionRequest, onDelta func(string)) (Completion, error) {
	req.Stream = true
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	s, err := c.api.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return Completion{}, err
	}
	defer s.Close()
	var (
		out  Completion
		text strings.Builder
	)
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Completion{}, fmt.Errorf("stream broken: %w", err)
		}
		out.ID, out.Model = cmp.Or(chunk.ID, out.ID), cmp.Or(chunk.Model, out.Model)
		if chunk.Usage != nil {
			out.PromptTokens, out.CompletionTokens = chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens
		}
		for _, choice := range chunk.Choices {
			if choice.Delta.Content != "" {
				text.WriteString(choice.Delta.Content)
				onDelta(choice.Delta.Content)
			}
			if choice.FinishReason != "" {
				out.FinishReason = string(choice.FinishReason)
			}
		}
	}
	out.Text = strings.TrimSpace(text.String())
	if out.Text == "" {
		return Completion{}, &Error{Temporary: true, Err: errors.New("the model returned an empty answer")}
	}
	return out, nil
}

// endSpan records the outcome of a call on its span and ends it.
func endSpan(span trace.Span, out Completion, err error, captureContent bool) {
	defer span.End()
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		return
	}
	span.SetAttributes(
		semconv.GenAIResponseID(out.ID),
		semconv.GenAIResponseModel(out.Model),
		semconv.GenAIResponseFinishReasons(out.FinishReason),
		semconv.GenAIUsageInputTokens(out.PromptTokens),
		semconv.GenAIUsageOutputTokens(out.CompletionTokens),
	)
	if captureContent {
		span.SetAttributes(semconv.GenAIOutputMessagesKey.String(messagesJSON([2]string{"assistant", out.Text})))
	}
}

// errorType is a low-cardinality name of a failure: the HTTP status, "timeout", or the
// context's error.
func errorType(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e) && e.StatusCode != 0:
		return strconv.Itoa(e.StatusCode)
	case errors.As(err, &e) && strings.HasPrefix(e.Err.Error(), "no answer within"):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &e):
		return "network"
	default:
		return "_OTHER"
	}
}

// messagesJSON writes role/content pairs in the GenAI conventions' message format.
func messagesJSON(msgs ...[2]string) string {
	type part struct {
		Type    string `json:"type"`
		Content string `json:"content"`
	}
	type message struct {
		Role  string `json:"role"`
		Parts []part `json:"parts"`
	}
	out := make([]message, len(msgs))
	for i, m := range msgs {
		out[i] = message{Role: m[0], Parts: []part{{Type: "text", Content: m[1]}}}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// serverAttributes name the API's host on spans.
func serverAttributes(baseURL string) []attribute.KeyValue {
	u, err := url.Parse(baseURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		port = p
	}
	return []attribute.KeyValue{semconv.ServerAddress(u.Hostname()), semconv.ServerPort(port)}
}

// Error is a failed call.
type Error struct {
	// StatusCode is the HTTP status, 0 when none arrived (network error, timeout).
	StatusCode int
	// Temporary says a later attempt may succeed.
	Temporary bool
	// RetryAfter is the wait the server asked for, 0 if none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("llm: HTTP %d: %v", e.StatusCode, e.Err)
	}
	return "llm: " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func classify(err error, timedOut bool, timeout time.Duration, retryAfter time.Duration) *Error {
	if timedOut {
		return &Error{Temporary: true, Err: fmt.Errorf("no answer within %s", timeout)}
	}
	status := 0
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
		err = errors.New(apiErr.Message)
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
		err = fmt.Errorf("%s", http.StatusText(status))
	}
	return &Error{StatusCode: status, Temporary: temporaryStatus(status), RetryAfter: retryAfter, Err: err}
}

// temporaryStatus: no status (network), 408, 409, 429 and 5xx are worth retrying; any other
// 4xx means the request itself is wrong (bad key, bad model, prompt too long).
func temporaryStatus(status int) bool {
	switch {
	case status == 0, status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooManyRequests, status >= 500:
		return true
	}
	return false
}

type retryAfterKey struct{}

// retryAfterRecorder notes a response's Retry-After for Complete: go-openai does not expose
// response headers on errors.
type retryAfterRecorder struct{ next http.RoundTripper }

func (t retryAfterRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if dst, ok := req.Context().Value(retryAfterKey{}).(*time.Duration); ok {
		*dst = parseRetryAfter(resp.Header, time.Now())
	}
	return resp, nil
}

// parseRetryAfter reads retry-after-ms (OpenAI's) or Retry-After in seconds or as an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("retry-after-ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
