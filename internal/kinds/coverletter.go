// Package kinds declares every kind of background job this system runs, one file each
// (docs/architecture.md, "Adding a kind"), and which kinds a worker process runs.
package kinds

import (
	"errors"
	"fmt"
	"time"

	"context"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/prompt"
)

// CoverLetterDeps are what writing cover letters needs.
type CoverLetterDeps struct {
	// LLM writes the letter, piece by piece.
	LLM llm.Streamer
	// Timeout bounds one LLM call; Wait is the longest a call may wait for the shared rate
	// budget (0: none).
	Timeout, Wait time.Duration
	// JobsPerMinute caps the letters one user may have asked for per minute, for jobs other
	// services ask for by message (the api counts its own); 0: no limit.
	JobsPerMinute int
	// Progress receives the letter as it is written; nil: nobody.
	Progress progress.Announcer
	// Metrics records the LLM calls; nil: nothing.
	Metrics *LLMMetrics
	// Finished adds to the announcements of a letter's final status (email, say); nil: none.
	Finished func(ctx context.Context, tx pgx.Tx, jobs []jobstore.Final) error
	// Retry is the letters' retry policy (WORKER_MAX_ATTEMPTS, WORKER_RETRY_*); zero fields:
	// the worker's defaults.
	Retry kind.Retry
}

// maxLetterBytes bounds a stored letter: far more than any letter, far less than a runaway
// answer could hold.
const maxLetterBytes = 256 << 10

// CoverLetter is cover-letter.generate: a letter written by the LLM from a job description
// and a CV, streamed to whoever watches, kept in cover_letter_jobs and announced on
// cover-letter.completed.
func CoverLetter(d CoverLetterDeps) kind.Kind {
	k := kind.Kind{
		Spec:            jobstore.CoverLetters(jobstore.Limits{JobsPerMinute: d.JobsPerMinute}, d.Finished),
		Timeout:         d.Timeout,
		Wait:            d.Wait,
		Retry:           d.Retry,
		MaxMessageBytes: job.MaxGenerateMessageBytes,
	}
	return kind.Define(k, func(ctx context.Context, j jobstore.Run, a job.CoverLetterArgs) (jobstore.CoverLetterResult, error) {
		start := time.Now()
		p := prompt.Build(a.JobDescription, a.CVText, a.Tone)
		deltas := newCoalescer(func(index int, text string) {
			d.Progress.Publish(progress.Event{Type: progress.TypeDelta, JobID: j.ID, Attempt: j.Attempts, Index: index, Text: text})
		}, func() bool { return d.Progress != nil && d.Progress.Watched(j.ID) })
		out, err := d.LLM.Stream(ctx, p.System, p.User, deltas.add)
		deltas.end()
		d.Metrics.call(time.Since(start), out, err)
		if err != nil {
			return jobstore.CoverLetterResult{}, llmFailure(err)
		}
		return jobstore.CoverLetterResult{CoverLetter: job.SafeText(out.Text, maxLetterBytes), PromptTokens: out.PromptTokens,
			CompletionTokens: out.CompletionTokens, Model: job.SafeText(out.Model, 255)}, nil
	})
}

// llmFailure says what an LLM error means for the job: the call was deferred by the rate
// budget (not made: no attempt spent), the LLM rejected the job for good (failed, with a
// reason its user reads), or it may work later (not sooner than the provider's Retry-After).
func llmFailure(err error) error {
	var llmErr *llm.Error
	switch {
	case !errors.As(err, &llmErr):
		return err
	case errors.Is(err, llm.ErrDeferred):
		return kind.Defer(llmErr.RetryAfter, err)
	case !llmErr.Temporary:
		reason, says := rejection(llmErr.Reason)
		return kind.Fail(reason, fmt.Errorf("%s: %w", says, err))
	}
	return kind.RetryAfter(llmErr.RetryAfter, err)
}

// rejection names the job outcome of a permanent LLM error of the given llm.Reason, and says
// what happened in words its user reads.
func rejection(llmReason string) (reason, says string) {
	switch llmReason {
	case llm.ReasonTruncated:
		return job.ReasonLLMTruncated, "the letter is incomplete"
	case llm.ReasonContentFilter:
		return job.ReasonLLMContentFilter, "the AI provider's content filter refused the job description or CV"
	case llm.ReasonEmptyAnswer:
		return job.ReasonLLMEmptyAnswer, "the model returned no letter"
	case llm.ReasonClientRejected:
		return job.ReasonLLMMisconfigured, "the worker's LLM settings do not fit the model"
	}
	return job.ReasonLLMRejected, "the LLM rejected the request"
}

// LLMMetrics are the cover letters' LLM metrics. A nil *LLMMetrics records nothing.
type LLMMetrics struct {
	duration *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
}

// NewLLMMetrics registers the LLM metrics with reg.
func NewLLMMetrics(reg prometheus.Registerer) *LLMMetrics {
	m := &LLMMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "careerops_worker_llm_request_duration_seconds", Help: "Duration of LLM calls, any wait for the rate budget included, by outcome (ok, transient_error, permanent_error, cancelled, deferred: not made).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}}, []string{"outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_llm_tokens_total", Help: "LLM tokens used by completed jobs, by direction (input, output)."},
			[]string{"direction"}),
	}
	reg.MustRegister(m.duration, m.tokens)
	return m
}

func (m *LLMMetrics) call(d time.Duration, out llm.Completion, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(llm.Outcome(err)).Observe(d.Seconds())
	if err == nil {
		m.tokens.WithLabelValues("input").Add(float64(out.PromptTokens))
		m.tokens.WithLabelValues("output").Add(float64(out.CompletionTokens))
	}
}
