package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

func TestDecodeCreateRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: valid
		wantTone   job.Tone
	}{
		{"minimal request gets the professional tone", `{"jobDescription":"a","cvText":"b"}`, 0, job.ToneProfessional},
		{"explicit tone", `{"jobDescription":"a","cvText":"b","tone":"concise"}`, 0, job.ToneConcise},
		{"whitespace around the object", " \n{\"jobDescription\":\"a\",\"cvText\":\"b\"}\n ", 0, job.ToneProfessional},
		{"null tone is the default", `{"jobDescription":"a","cvText":"b","tone":null}`, 0, job.ToneProfessional},
		{"syntax error", `{"jobDescription":"a",}`, 400, ""},
		{"truncated", `{"jobDescription":"a"`, 400, ""},
		{"array", `[]`, 400, ""},
		{"string", `"hello"`, 400, ""},
		{"trailing garbage", `{"jobDescription":"a","cvText":"b"} x`, 400, ""},
		{"number field", `{"jobDescription":1,"cvText":"b"}`, 400, ""},
		{"unknown field", `{"jobDescription":"a","cvText":"b","x":1}`, 400, ""},
		{"missing cv", `{"jobDescription":"a"}`, 422, ""},
		{"blank description", `{"jobDescription":" \t","cvText":"b"}`, 422, ""},
		{"bad tone", `{"jobDescription":"a","cvText":"b","tone":"PROFESSIONAL"}`, 422, ""},
		{"description at the limit", `{"jobDescription":"` + strings.Repeat("a", job.MaxJobDescriptionBytes) + `","cvText":"b"}`, 0, job.ToneProfessional},
		{"description over the limit", `{"jobDescription":"` + strings.Repeat("a", job.MaxJobDescriptionBytes+1) + `","cvText":"b"}`, 413, ""},
		{"invalid UTF-8 escapes are replaced, still valid", `{"jobDescription":"\udc00","cvText":"b"}`, 0, job.ToneProfessional},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := decodeCreateRequest([]byte(tt.body))
			if tt.wantStatus == 0 {
				if err != nil || req.Tone != tt.wantTone {
					t.Fatalf("decode = %+v, %v", req.Tone, err)
				}
				return
			}
			var apiErr *apiError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus {
				t.Fatalf("decode error = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
}

func TestRequestHashTellsRequestsApart(t *testing.T) {
	t.Parallel()
	a := createRequest{JobDescription: "ab", CVText: "c", Tone: job.ToneConcise}
	b := createRequest{JobDescription: "a", CVText: "bc", Tone: job.ToneConcise}
	if a.hash() == b.hash() || a.hash() != a.hash() {
		t.Fatal("hash must separate fields and be stable")
	}
}

func TestParseListQuery(t *testing.T) {
	t.Parallel()
	cursor := encodeCursor(jobstore.Cursor{CreatedAt: time.UnixMicro(1764322000123456), RowID: 42})
	tests := []struct {
		name                  string
		limit, status, cursor string
		wantErr               bool
		wantLimit             int
	}{
		{"defaults", "", "", "", false, defaultListLimit},
		{"limit 1", "1", "", "", false, 1},
		{"limit 100", "100", "", "", false, 100},
		{"limit 0", "0", "", "", true, 0},
		{"limit 101", "101", "", "", true, 0},
		{"limit negative", "-5", "", "", true, 0},
		{"status filter", "", "completed", "", false, defaultListLimit},
		{"unknown status", "", "COMPLETED", "", true, 0},
		{"round-tripped cursor", "", "", cursor, false, defaultListLimit},
		{"cursor not base64", "", "", "!!", true, 0},
		{"cursor without dot", "", "", "MTIz", true, 0},
		{"cursor with zero id", "", "", "MTIzLjA", true, 0},
		{"cursor too long", "", "", strings.Repeat("A", 100), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := parseListQuery(tt.limit, tt.status, tt.cursor)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && q.Limit != tt.wantLimit {
				t.Fatalf("limit = %d, want %d", q.Limit, tt.wantLimit)
			}
		})
	}
	q, _ := parseListQuery("", "", cursor)
	if q.After == nil || q.After.RowID != 42 || q.After.CreatedAt.UnixMicro() != 1764322000123456 {
		t.Fatalf("cursor decoded to %+v", q.After)
	}
}

func FuzzDecodeCreateRequest(f *testing.F) {
	for _, seed := range []string{`{"jobDescription":"a","cvText":"b"}`, `{"jobDescription":"a","cvText":"b","tone":"friendly"}`, `[]`, `{`, `null`, `{"tone":1}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeCreateRequest(body)
		if err != nil {
			var apiErr *apiError
			if !errors.As(err, &apiErr) || apiErr.Status < 400 || apiErr.Status > 499 {
				t.Fatalf("error %v is not a 4xx apiError", err)
			}
			return
		}
		if !req.Tone.Valid() || strings.TrimSpace(req.JobDescription) == "" || strings.TrimSpace(req.CVText) == "" ||
			len(req.JobDescription) > job.MaxJobDescriptionBytes || len(req.CVText) > job.MaxCVTextBytes {
			t.Fatalf("accepted an invalid request %+v", req)
		}
	})
}

// A data error from the database is the client's mistake, which a retry repeats: 422, not a
// 503 with Retry-After that invites retries forever.
func TestUnavailableTellsDataErrorsFromOutages(t *testing.T) {
	t.Parallel()
	var apiErr *apiError
	if err := unavailable(fmt.Errorf("store: %w", &pgconn.PgError{Code: "22021"})); !errors.As(err, &apiErr) || apiErr.Status != 422 {
		t.Fatalf("a data error became %v, want a 422", err)
	}
	var outage *unavailableError
	if err := unavailable(errors.New("dial tcp: connection refused")); !errors.As(err, &outage) {
		t.Fatalf("an outage became %v, want unavailable", err)
	}
}

func TestValidateCreateAnswersAsTheAPI(t *testing.T) {
	t.Parallel()
	body := `{"jobDescription":"a","cvText":"b"}`
	tests := []struct {
		name, body, key string
		wantStatus      int // 0: valid
		wantCode        string
	}{
		{"valid without a key", body, "", 0, ""},
		{"valid with a key", body, "k-1", 0, ""},
		{"key with a space", body, "k 1", 400, "invalid_idempotency_key"},
		{"key too long", body, strings.Repeat("k", 256), 400, "invalid_idempotency_key"},
		{"body refused before the key", `{"jobDescription":"a"}`, "k 1", 422, "validation_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := ValidateCreate([]byte(tt.body), tt.key)
			if tt.wantStatus == 0 {
				if err != nil || req.Tone != job.ToneProfessional || req.CVText != "b" {
					t.Fatalf("ValidateCreate = %+v, %v", req, err)
				}
				return
			}
			var st interface{ HTTPStatus() int }
			if !errors.As(err, &st) || st.HTTPStatus() != tt.wantStatus {
				t.Fatalf("ValidateCreate error = %v, want status %d", err, tt.wantStatus)
			}
			if b, _ := json.Marshal(err); !strings.Contains(string(b), `"code":"`+tt.wantCode+`"`) {
				t.Fatalf("error marshals as %s, want code %s", b, tt.wantCode)
			}
		})
	}
}
