package kinds

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/llm"
)

// TestLLMFailure is the cover letters' table from LLM errors to what becomes of the job: each
// permanent class fails with its reason and words its user reads, a deferral keeps its place
// in the budget's line, a temporary error keeps the provider's Retry-After, and an error the
// LLM client did not classify stays transient.
func TestLLMFailure(t *testing.T) {
	t.Parallel()
	plain := errors.New("connection reset")
	tests := []struct {
		name string
		in   error
		want kind.Error // Err is not compared
		says string     // the start of the stored error, for permanent failures
	}{
		{"4xx", &llm.Error{StatusCode: 400, Err: errors.New("bad model")},
			kind.Error{Permanent: true, Reason: job.ReasonLLMRejected}, "the LLM rejected the request: "},
		{"truncated", &llm.Error{Reason: llm.ReasonTruncated, Err: errors.New("cap")},
			kind.Error{Permanent: true, Reason: job.ReasonLLMTruncated}, "the letter is incomplete: "},
		{"content filter", &llm.Error{StatusCode: 400, Reason: llm.ReasonContentFilter, Err: errors.New("filtered")},
			kind.Error{Permanent: true, Reason: job.ReasonLLMContentFilter}, "the AI provider's content filter refused"},
		{"empty", &llm.Error{Reason: llm.ReasonEmptyAnswer, Err: errors.New("empty")},
			kind.Error{Permanent: true, Reason: job.ReasonLLMEmptyAnswer}, "the model returned no letter: "},
		{"client refused the settings", &llm.Error{Reason: llm.ReasonClientRejected, Err: errors.New("max_tokens")},
			kind.Error{Permanent: true, Reason: job.ReasonLLMMisconfigured}, "the worker's LLM settings do not fit the model: "},
		{"wrapped rejection", fmt.Errorf("stream: %w", &llm.Error{StatusCode: 403, Err: errors.New("no")}),
			kind.Error{Permanent: true, Reason: job.ReasonLLMRejected}, "the LLM rejected the request: stream: "},
		{"429 with Retry-After", &llm.Error{StatusCode: 429, Temporary: true, RetryAfter: 30 * time.Second, Err: errors.New("slow down")},
			kind.Error{RetryAfter: 30 * time.Second}, ""},
		{"503", &llm.Error{StatusCode: 503, Temporary: true, Err: errors.New("overloaded")}, kind.Error{}, ""},
		{"deferred by the budget", &llm.Error{Temporary: true, RetryAfter: 20 * time.Second, Err: fmt.Errorf("%w: 20s", llm.ErrDeferred)},
			kind.Error{Deferred: true, RetryAfter: 20 * time.Second}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := kind.As(llmFailure(tt.in))
			if !ok {
				t.Fatalf("llmFailure(%v) is not a kind error", tt.in)
			}
			if got.Permanent != tt.want.Permanent || got.Reason != tt.want.Reason || got.Deferred != tt.want.Deferred || got.RetryAfter != tt.want.RetryAfter {
				t.Fatalf("llmFailure(%v) = %+v, want %+v", tt.in, *got, tt.want)
			}
			if msg := got.Error(); tt.says != "" && (len(msg) < len(tt.says) || msg[:len(tt.says)] != tt.says) {
				t.Fatalf("message %q, want it to start with %q", msg, tt.says)
			}
		})
	}
	if got := llmFailure(plain); got != plain { //nolint:errorlint // the very error, unwrapped, is the point
		t.Fatalf("an unclassified error became %v", got)
	}
}
