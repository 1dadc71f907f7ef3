package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/careerops/jobs/internal/job"
)

// Response is an answer as it came.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode decodes the JSON body into v.
func (r *Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("apiclient: answer %d is not the JSON expected: %w: %.300s", r.Status, err, r.Body)
	}
	return nil
}

// RetryAfter is the wait the answer's Retry-After asks for (0 if none).
func (r *Response) RetryAfter() time.Duration {
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// Error is an answer other than the one expected, with its JSON error body's code and message.
type Error struct {
	Status     int
	Code       string // "" if the body was not the API's JSON error
	Message    string
	RetryAfter time.Duration
	Body       []byte
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("api answered %d: %.300s", e.Status, e.Body)
	}
	return fmt.Sprintf("api answered %d %s: %s", e.Status, e.Code, e.Message)
}

// StatusOf is the HTTP status of an *Error in err's chain, 0 for any other error (a transport
// error, say).
func StatusOf(err error) int {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

// errorOf is r as an *Error.
func errorOf(r *Response) *Error {
	e := &Error{Status: r.Status, RetryAfter: r.RetryAfter(), Body: r.Body}
	var body job.ErrorBody
	if json.Unmarshal(r.Body, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	return e
}
