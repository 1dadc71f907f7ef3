package job

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzGenerateMessage feeds the worker's decoder (DecodeGenerateMessage) arbitrary bodies: it
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
		m, err := DecodeGenerateMessage(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) || len(err.Error()) > MaxErrorBytes {
				t.Fatalf("error %.300v is not a short ErrInvalidMessage", err)
			}
			return
		}
		if !ValidID(m.JobID) || m.UserID <= 0 || m.JobDescription == "" || m.CVText == "" || !m.Tone.Valid() ||
			len(m.JobDescription) > MaxJobDescriptionBytes || len(m.CVText) > MaxCVTextBytes ||
			strings.ContainsRune(m.JobDescription+m.CVText, 0) || !utf8.ValidString(m.JobDescription+m.CVText) {
			t.Fatalf("accepted an invalid message %+v", m)
		}
	})
}
