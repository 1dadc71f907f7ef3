package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Reasons of permanent errors that are not a plain refusal of the request. The worker turns
// each into its own job outcome.
const (
	// ReasonTruncated: the answer stopped at the token cap (finish_reason "length"); a reasoning
	// model may have spent the whole cap thinking.
	ReasonTruncated = "truncated"
	// ReasonContentFilter: the provider's content filter refused the prompt (Azure's HTTP 400
	// content_filter, OpenAI's invalid_prompt) or withheld the answer (finish_reason
	// "content_filter").
	ReasonContentFilter = "content_filter"
	// ReasonEmptyAnswer: the model answered nothing, or only whitespace.
	ReasonEmptyAnswer = "empty_answer"
	// ReasonClientRejected: the client library refused to send the request (for instance
	// go-openai refuses max_tokens for a reasoning model when ModelKind says chat).
	ReasonClientRejected = "client_rejected"
)

// ErrDeferred is wrapped by the Error of a call that was not made because the shared rate
// budget had no room for it soon enough (internal/llmbudget). The Error is Temporary and its
// RetryAfter says when to come back (a while before the budget has room); the attempt does
// not count.
var ErrDeferred = errors.New("deferred: the LLM rate budget has no room soon enough")

// Error is a failed call.
type Error struct {
	// StatusCode is the HTTP status, 0 when none arrived (network error, timeout, refusal by
	// the client, an answer that is not a letter).
	StatusCode int
	// Temporary says a later attempt may succeed.
	Temporary bool
	// Reason is one of the Reason constants, or "" for the other errors: a temporary failure,
	// or a request the API refused (HTTP 4xx).
	Reason string
	// RetryAfter is the wait the server asked for, 0 if none.
	RetryAfter time.Duration
	// RateLimit is what the response said of the provider's rate limits.
	RateLimit RateLimit
	Err       error
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("llm: HTTP %d: %v", e.StatusCode, e.Err)
	}
	return "llm: " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// permanent is a permanent error of reason with a message the user can read.
func permanent(reason, msg string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(msg, args...)}
}

// checkAnswer turns an answer that is not a letter into a permanent error: filtered,
// truncated or empty. maxTokens is the cap the request set.
func checkAnswer(out Completion, maxTokens int) *Error {
	switch {
	case out.FinishReason == string(openai.FinishReasonContentFilter):
		return permanent(ReasonContentFilter,
			"the provider's content filter withheld the answer; the letter was not written")
	case out.FinishReason == string(openai.FinishReasonLength) && out.ReasoningTokens > 0:
		return permanent(ReasonTruncated, "the answer reached the cap of %d tokens (%d of them spent reasoning) "+
			"before it was complete; the letter would be cut short", maxTokens, out.ReasoningTokens)
	case out.FinishReason == string(openai.FinishReasonLength):
		return permanent(ReasonTruncated,
			"the answer reached the cap of %d tokens before it was complete; the letter would be cut short", maxTokens)
	case out.Text == "":
		return permanent(ReasonEmptyAnswer, "the model returned an empty answer")
	}
	return nil
}

// classify sorts a failed call: a timeout is temporary; an API error by its status, a content
// filter's refusal being permanent; an error before anything was sent is the client library's
// refusal, permanent; anything else (network) temporary.
func classify(err error, timedOut bool, timeout time.Duration, call *callRecord) *Error {
	if timedOut {
		return &Error{Temporary: true, Err: fmt.Errorf("no answer within %s", timeout)}
	}
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
		out    = &Error{RetryAfter: call.retryAfter, RateLimit: call.rateLimit, Err: err}
	)
	switch {
	case errors.As(err, &apiErr):
		out.StatusCode, out.Err = apiErr.HTTPStatusCode, errors.New(apiErr.Message)
		if isContentFilter(apiErr) {
			out.Reason = ReasonContentFilter
			out.Err = fmt.Errorf("the provider's content filter refused the prompt: %s", apiErr.Message)
		}
	case errors.As(err, &reqErr):
		out.StatusCode, out.Err = reqErr.HTTPStatusCode, errors.New(flatErrorMessage(reqErr))
	case !call.sent && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		out.Reason = ReasonClientRejected
		out.Err = fmt.Errorf("the request was refused before it was sent: %w", err)
		return out
	}
	out.Temporary = out.Reason == "" && temporaryStatus(out.StatusCode)
	return out
}

// isContentFilter recognises a content filter's refusal of the prompt: Azure's code
// content_filter (inner code ResponsibleAIPolicyViolation) and OpenAI's invalid_prompt.
func isContentFilter(e *openai.APIError) bool {
	code, _ := e.Code.(string)
	return code == "content_filter" || code == "invalid_prompt" ||
		(e.InnerError != nil && e.InnerError.Code == "ResponsibleAIPolicyViolation")
}

// flatErrorMessage is the message of an error body go-openai could not read as
// {"error":{…}}: vLLM's flat {"object":"error","message":…}, else the HTTP status text.
func flatErrorMessage(e *openai.RequestError) string {
	var flat struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Body, &flat) == nil && strings.TrimSpace(flat.Message) != "" {
		return flat.Message
	}
	return http.StatusText(e.HTTPStatusCode)
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

// errorType is a low-cardinality name of a failure: the reason, the HTTP status, "timeout",
// or the context's error.
func errorType(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e) && e.Reason != "":
		return e.Reason
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

// Outcome names a call's outcome on metrics: ok, deferred (not made: the rate budget had no
// turn soon enough), transient_error, permanent_error, or cancelled (the caller gave up: an
// error that is not an *Error).
func Outcome(err error) string {
	var e *Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrDeferred):
		return "deferred"
	case errors.As(err, &e) && e.Temporary:
		return "transient_error"
	case errors.As(err, &e):
		return "permanent_error"
	}
	return "cancelled"
}
