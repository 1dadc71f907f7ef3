package job

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzGenerateMessage feeds the worker's decoder (JSON, then Validate) arbitrary bodies: it
// never panics, and whatever it accepts is a job the worker can run.
func FuzzGenerateMessage(f *testing.F) {
	for _, seed := range []string{
		`{"jobId":"a-1","userId":1,"jobDescription":"d","cvText":"c"}`,
		`{"jobId":"a-1","userId":1,"jobDescription":"d","cvText":"c","tone":"friendly","createdAt":"2026-01-01T00:00:00Z","retryCount":2}`,
		`{"jobId":"","userId":-1}`, `not json`, `[]`, `null`, `{"userId":1e400}`, `{"jobId":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m GenerateMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("Validate error %v is not ErrInvalidMessage", err)
			}
			return
		}
		if !ValidID(m.JobID) || m.UserID <= 0 || m.JobDescription == "" || m.CVText == "" || !m.Tone.Valid() ||
			len(m.JobDescription) > MaxJobDescriptionBytes || len(m.CVText) > MaxCVTextBytes {
			t.Fatalf("accepted an invalid message %+v", m)
		}
	})
}
