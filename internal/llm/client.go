// Package llm asks an OpenAI-compatible chat-completions API for text, through go-openai, and
// sorts its failures into transient ones (worth retrying, with the server's Retry-After) and
// permanent ones.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
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
}

// Client calls the chat-completions API.
type Client struct {
	api *openai.Client
	cfg Config
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
		cfg.Transport = http.DefaultTransport
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	oc.HTTPClient = &http.Client{Transport: retryAfterRecorder{next: cfg.Transport}}
	return &Client{api: openai.NewClientWithConfig(oc), cfg: cfg}
}

// Completion is the model's answer and what it cost.
type Completion struct {
	Text             string
	Model            string
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
}

// Complete asks the model once. Failures are *Error.
func (c *Client) Complete(ctx context.Context, system, user string) (Completion, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var retryAfter time.Duration
	callCtx = context.WithValue(callCtx, retryAfterKey{}, &retryAfter)

	resp, err := c.api.CreateChatCompletion(callCtx, openai.ChatCompletionRequest{
		Model: c.cfg.Model,
		// max_tokens, not max_completion_tokens: OpenAI still takes it for chat models and
		// most OpenAI-compatible servers know only this one.
		MaxTokens: c.cfg.MaxTokens, //nolint:staticcheck // SA1019: see above
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: system},
			{Role: openai.ChatMessageRoleUser, Content: user},
		},
	})
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
		Text:             strings.TrimSpace(resp.Choices[0].Message.Content),
		Model:            resp.Model,
		FinishReason:     string(resp.Choices[0].FinishReason),
		PromptTokens:     resp.Usage.PromptTokens,
		CompletionTokens: resp.Usage.CompletionTokens,
	}, nil
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
