package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

// maxBodyBytes is the largest request body accepted.
const maxBodyBytes = 100 << 10

// maxIdempotencyKeyBytes bounds the Idempotency-Key header.
const maxIdempotencyKeyBytes = 255

// createRequest is the body of POST /api/cover-letter (job.CreateRequest) as the api reads it.
type createRequest job.CreateRequest

// decodeCreateRequest parses and validates a request body. Errors are *apiError.
func decodeCreateRequest(body []byte) (createRequest, error) {
	var req createRequest
	// encoding/json would replace invalid UTF-8 silently: refuse it before decoding.
	if !utf8.Valid(body) {
		return req, newError(422, "validation_failed", "the text must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, newError(400, "invalid_json", "the body must hold exactly one JSON object")
	}
	switch {
	case strings.ContainsRune(req.JobDescription, 0) || strings.ContainsRune(req.CVText, 0) || strings.ContainsRune(string(req.Tone), 0):
		return req, newError(422, "validation_failed", "the text must not contain NUL characters")
	case strings.TrimSpace(req.JobDescription) == "":
		return req, newError(422, "validation_failed", "jobDescription is required")
	case strings.TrimSpace(req.CVText) == "":
		return req, newError(422, "validation_failed", "cvText is required")
	case len(req.JobDescription) > job.MaxJobDescriptionBytes:
		return req, newError(413, "field_too_large", "jobDescription is longer than %d bytes", job.MaxJobDescriptionBytes)
	case len(req.CVText) > job.MaxCVTextBytes:
		return req, newError(413, "field_too_large", "cvText is longer than %d bytes", job.MaxCVTextBytes)
	case req.Tone == "":
		req.Tone = job.ToneProfessional
	case !req.Tone.Valid():
		return req, newError(422, "validation_failed", "tone must be one of professional, friendly, concise")
	}
	return req, nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return newError(400, "invalid_json", "%s must be a %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newError(400, "invalid_json", "the body is not valid JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return newError(400, "invalid_json", "%s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return newError(400, "invalid_json", "the body must be a JSON object")
	}
}

func jsonKind(k string) string {
	if k == "struct" {
		return "object"
	}
	return k
}

// ValidateCreate checks a POST /api/cover-letter body and its Idempotency-Key ("" for none)
// as the api does, for a program that must answer the same way (tools/riverpeer, the bench's
// River peer). A refusal is an error with HTTPStatus() that marshals as the contract's
// {"code", "message"}.
func ValidateCreate(body []byte, idempotencyKey string) (job.CreateRequest, error) {
	req, err := decodeCreateRequest(body)
	if err != nil {
		return job.CreateRequest(req), err
	}
	if idempotencyKey != "" && !validIdempotencyKey(idempotencyKey) {
		return job.CreateRequest(req), newError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
	}
	return job.CreateRequest(req), nil
}

// hash identifies a request's content, to tell an idempotent replay from a reused key.
func (r createRequest) hash() string {
	h := sha256.New()
	for _, s := range []string{r.JobDescription, r.CVText, string(r.Tone)} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validIdempotencyKey: 1 to 255 visible ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdempotencyKeyBytes {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// listQuery is the parsed query of GET /api/cover-letter/jobs.
type listQuery struct {
	Limit  int
	Status job.Status
	After  *jobstore.Cursor
}

const defaultListLimit = 20

func parseListQuery(limit, status, cursor string) (listQuery, error) {
	q := listQuery{Limit: defaultListLimit, Status: job.Status(status)}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > 100 {
			return q, newError(400, "invalid_query", "limit must be an integer from 1 to 100")
		}
		q.Limit = n
	}
	if status != "" && !q.Status.Valid() {
		return q, newError(400, "invalid_query", "status must be one of pending, processing, completed, failed, cancelled")
	}
	if cursor != "" {
		c, err := decodeCursor(cursor)
		if err != nil {
			return q, newError(400, "invalid_cursor", "cursor is not one this API returned")
		}
		q.After = &c
	}
	return q, nil
}

// Cursors are opaque to clients: base64url of "<created_at unix µs>.<row id>".
func encodeCursor(c jobstore.Cursor) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d", c.CreatedAt.UnixMicro(), c.RowID))
}

func decodeCursor(s string) (jobstore.Cursor, error) {
	if len(s) > 64 {
		return jobstore.Cursor{}, errors.New("cursor too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return jobstore.Cursor{}, err
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return jobstore.Cursor{}, errors.New("malformed cursor")
	}
	us, err1 := strconv.ParseInt(micros, 10, 64)
	rowID, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || us <= 0 || rowID <= 0 {
		return jobstore.Cursor{}, errors.New("malformed cursor")
	}
	return jobstore.Cursor{CreatedAt: time.UnixMicro(us), RowID: rowID}, nil
}
