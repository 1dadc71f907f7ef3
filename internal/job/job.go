// Package job holds the shared vocabulary of the system: job statuses, tones, the queue names
// and the message bodies that travel between the api, the worker and other services. It
// imports nothing of this module so every other package may depend on it.
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is where a job is in its life.
type Status string

// The statuses of a job: pending → processing → completed | failed, or cancelled.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Statuses returns every status, in the order of a job's life.
func Statuses() []Status {
	return []Status{StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled}
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Final reports whether a job in status s will never change again on its own.
func (s Status) Final() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Tone is the voice of the letter.
type Tone string

// The tones a client may ask for. ToneProfessional is the default.
const (
	ToneProfessional Tone = "professional"
	ToneFriendly     Tone = "friendly"
	ToneConcise      Tone = "concise"
)

// Valid reports whether t is a known tone.
func (t Tone) Valid() bool {
	return t == ToneProfessional || t == ToneFriendly || t == ToneConcise
}

// Limits on what a job may carry, in bytes.
const (
	MaxJobDescriptionBytes = 20 << 10
	MaxCVTextBytes         = 50 << 10
	// MaxGenerateMessageBytes bounds a generate message's body before it is decoded: room for
	// both texts with every character escaped, far below what would strain a worker.
	MaxGenerateMessageBytes = 512 << 10
	// MaxErrorBytes bounds every error text the system stores, logs or publishes in a header:
	// a message's header frame must stay far below RabbitMQ's frame size (128 KiB), or the
	// broker closes the whole connection.
	MaxErrorBytes = 1 << 10
)

// Queue names: the contract with other services.
const (
	QueueGenerate  = "cover-letter.generate"
	QueueCompleted = "cover-letter.completed"
	QueueDLQ       = "cover-letter.generate.dlq"
	// ExchangeProgress is a topic exchange of transient progress messages (status changes
	// and pieces of letters as the LLM writes them), routed by job id, for whichever api
	// replica streams that job to a browser. Losing one corrupts nothing: the stored job is
	// the truth.
	ExchangeProgress = "cover-letter.progress"
)

// Headers the system sets: the job a message is about, when it became due (RFC 3339, for
// the queue-wait metric), and why a message was dead-lettered.
const (
	HeaderJobID       = "x-careerops-job-id"
	HeaderDueAt       = "x-careerops-due-at"
	HeaderDeathReason = "x-careerops-death-reason"
	HeaderDeathError  = "x-careerops-death-error"
)

// Reasons a message is dead-lettered.
const (
	ReasonInvalidMessage    = "invalid_message"
	ReasonLLMRejected       = "llm_rejected"
	ReasonAttemptsExhausted = "attempts_exhausted"
	ReasonQuotaExceeded     = "quota_exceeded"
	// The LLM answered, but not with a letter: cut at its token cap, refused by the
	// provider's content filter, or empty; or the worker's LLM settings do not fit the model.
	ReasonLLMTruncated     = "llm_truncated"
	ReasonLLMContentFilter = "llm_content_filter"
	ReasonLLMEmptyAnswer   = "llm_empty_answer"
	ReasonLLMMisconfigured = "llm_misconfigured"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidID reports whether id can name a job: 1 to 64 letters, digits, '.', '_', ':' or '-',
// starting with a letter or digit. The api issues UUIDs; other services may use their own.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// GenerateMessage is the body of a message on QueueGenerate.
type GenerateMessage struct {
	JobID          string    `json:"jobId"`
	UserID         int64     `json:"userId"`
	JobDescription string    `json:"jobDescription"`
	CVText         string    `json:"cvText"`
	Tone           Tone      `json:"tone,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
	RetryCount     int       `json:"retryCount,omitempty"`
}

// ErrInvalidMessage marks a message that can never be processed as it is.
var ErrInvalidMessage = errors.New("invalid message")

// DecodeGenerateMessage decodes and validates a generate message's body: its size before
// anything else, then UTF-8 (encoding/json would silently replace invalid bytes).
func DecodeGenerateMessage(body []byte) (GenerateMessage, error) {
	var m GenerateMessage
	switch {
	case len(body) > MaxGenerateMessageBytes:
		return m, fmt.Errorf("%w: the body is %d bytes, larger than %d", ErrInvalidMessage, len(body), MaxGenerateMessageBytes)
	case !utf8.Valid(body):
		return m, fmt.Errorf("%w: the body is not valid UTF-8", ErrInvalidMessage)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("%w: the body is not a JSON job: %s", ErrInvalidMessage, Clip(err.Error(), 200))
	}
	return m, m.Validate()
}

// Validate checks a message decoded from the queue, filling the default tone. PostgreSQL's
// text refuses NUL, so no text may hold one.
func (m *GenerateMessage) Validate() error {
	switch {
	case !ValidID(m.JobID):
		return fmt.Errorf("%w: jobId must be 1-64 characters of [A-Za-z0-9._:-]", ErrInvalidMessage)
	case m.UserID <= 0:
		return fmt.Errorf("%w: userId must be a positive integer", ErrInvalidMessage)
	}
	a := CoverLetterArgs{JobDescription: m.JobDescription, CVText: m.CVText, Tone: m.Tone}
	if err := a.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	m.Tone = a.Tone
	return nil
}

// CoverLetterArgs are what a cover letter is written from: the arguments of a
// cover-letter.generate job.
type CoverLetterArgs struct {
	JobDescription string `json:"jobDescription"`
	CVText         string `json:"cvText"`
	Tone           Tone   `json:"tone,omitempty"`
}

// Validate checks the texts and the tone, filling the default tone. PostgreSQL's text
// refuses NUL, so no text may hold one.
func (a *CoverLetterArgs) Validate() error {
	var problem string
	switch {
	case a.JobDescription == "":
		problem = "jobDescription is required"
	case !utf8.ValidString(a.JobDescription) || !utf8.ValidString(a.CVText):
		problem = fieldName(a.JobDescription, "jobDescription", "cvText", utf8.ValidString) + " must be valid UTF-8"
	case strings.ContainsRune(a.JobDescription, 0) || strings.ContainsRune(a.CVText, 0):
		problem = fieldName(a.JobDescription, "jobDescription", "cvText", noNUL) + " must not contain NUL"
	case len(a.JobDescription) > MaxJobDescriptionBytes:
		problem = "jobDescription is too long"
	case a.CVText == "":
		problem = "cvText is required"
	case len(a.CVText) > MaxCVTextBytes:
		problem = "cvText is too long"
	case a.Tone != "" && !a.Tone.Valid():
		problem = fmt.Sprintf("unknown tone %q", Clip(string(a.Tone), 64))
	}
	if problem != "" {
		return errors.New(problem)
	}
	if a.Tone == "" {
		a.Tone = ToneProfessional
	}
	return nil
}

// fieldName names the first of two fields whose value fails ok: first if it does, else
// second.
func fieldName(firstValue, first, second string, ok func(string) bool) string {
	if !ok(firstValue) {
		return first
	}
	return second
}

func noNUL(s string) bool { return !strings.ContainsRune(s, 0) }

// Clip cuts s to at most n bytes, on a rune boundary, marking the cut with "…": for error
// texts and header values that must stay small whatever their source.
func Clip(s string, n int) string {
	const mark = "…"
	if len(s) <= n {
		return s
	}
	if n < len(mark) {
		return ""
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// SafeText makes s fit to store and publish whatever its source: invalid UTF-8 and NUL
// (which PostgreSQL refuses) become U+FFFD, and the result is clipped to n bytes.
func SafeText(s string, n int) string {
	if strings.ContainsRune(s, 0) {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return Clip(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// CompletedMessage is the body of a message on QueueCompleted. It is written once per final
// result, in the transaction that stores the result, and delivered at least once: after a
// crash between RabbitMQ's confirm and the outbox's commit the same message (same message id,
// "<jobId>/<status>") is published again, so consumers deduplicate by message id.
type CompletedMessage struct {
	JobID       string    `json:"jobId"`
	UserID      int64     `json:"userId"`
	Status      Status    `json:"status"`
	CompletedAt time.Time `json:"completedAt"`
	CoverLetter string    `json:"coverLetter,omitempty"`
	Error       string    `json:"error,omitempty"`
}
