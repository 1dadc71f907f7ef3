package job

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"time"
	"unicode/utf8"
)

// Envelope holds the fields every job message has, whatever its kind: which job, whose, when
// it was created and how often it was tried. A message's body is one JSON object: the
// envelope's fields beside the kind's arguments (a cover-letter.generate body is the envelope
// and {jobDescription, cvText, tone}).
type Envelope struct {
	JobID      string    `json:"jobId"`
	UserID     int64     `json:"userId"`
	CreatedAt  time.Time `json:"createdAt"`
	RetryCount int       `json:"retryCount,omitempty"`
}

// envelopeKeys are the JSON names of Envelope's fields: they are not arguments.
var envelopeKeys = []string{"jobId", "userId", "createdAt", "retryCount"}

var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$`)

// ValidKind reports whether name can name a job kind, and so its queue: dot-separated lower
// case words, e.g. "notifications.email".
func ValidKind(name string) bool { return len(name) <= 100 && kindPattern.MatchString(name) }

// Kinds are the names of the job kinds this system runs (internal/kinds declares them), and
// so the queues every program declares.
func Kinds() []string {
	return []string{QueueGenerate, KindEmail, KindRetention, KindAnalytics, KindExport}
}

// KindExport is the kind that writes a user's data (jobs and letters) into an export they
// download: POST /api/me/export.
const KindExport = "data.export"

// KindRetention is the scheduled kind that deletes finished jobs older than RETENTION_DAYS.
const KindRetention = "maintenance.retention"

// KindAnalytics is the scheduled kind that folds finished jobs into the usage and cost
// rollups (every 5 minutes, and on demand).
const KindAnalytics = "analytics.process"

// SystemUserEmail is the email of the user that system work (scheduled jobs) runs as: a row
// of users created by the schema's migrations; nobody signs in as it.
const SystemUserEmail = "system@careerops.invalid"

// KindEmail is the kind of the emails that tell users about their jobs.
const KindEmail = "notifications.email"

// DLQ is the queue where a kind's messages that failed for good wait for an operator.
func DLQ(kind string) string { return kind + ".dlq" }

// EncodeMessage is the body of a job's message: the envelope's fields and args's (a JSON
// object), in one object.
func EncodeMessage(e Envelope, args json.RawMessage) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &fields); err != nil {
			return nil, fmt.Errorf("job: arguments are not a JSON object: %w", err)
		}
	}
	head, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var envelope map[string]json.RawMessage
	if err := json.Unmarshal(head, &envelope); err != nil {
		return nil, err
	}
	maps.Copy(fields, envelope)
	return json.Marshal(fields)
}

// DecodeMessage reads a job message's body of at most maxBytes: its envelope, validated, and
// its arguments (the other fields) as a JSON object. The error wraps ErrInvalidMessage.
func DecodeMessage(body []byte, maxBytes int) (Envelope, json.RawMessage, error) {
	var e Envelope
	switch {
	case len(body) > maxBytes:
		return e, nil, fmt.Errorf("%w: the body is %d bytes, larger than %d", ErrInvalidMessage, len(body), maxBytes)
	case !utf8.Valid(body):
		return e, nil, fmt.Errorf("%w: the body is not valid UTF-8", ErrInvalidMessage)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return e, nil, fmt.Errorf("%w: the body is not a JSON job: %s", ErrInvalidMessage, Clip(err.Error(), 200))
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return e, nil, fmt.Errorf("%w: the body is not a JSON job: %s", ErrInvalidMessage, Clip(err.Error(), 200))
	}
	switch {
	case !ValidID(e.JobID):
		return e, nil, fmt.Errorf("%w: jobId must be 1-64 characters of [A-Za-z0-9._:-]", ErrInvalidMessage)
	case e.UserID <= 0:
		return e, nil, fmt.Errorf("%w: userId must be a positive integer", ErrInvalidMessage)
	}
	for _, k := range envelopeKeys {
		delete(fields, k)
	}
	args, err := json.Marshal(fields)
	return e, args, err
}
