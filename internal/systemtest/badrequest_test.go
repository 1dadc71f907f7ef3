package systemtest

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/careerops/jobs/internal/auth"
)

// TestBadRequestsGetTheRight4xx: every malformed request gets its 4xx and a JSON error, never
// a 500, and creates no job.
func TestBadRequestsGetTheRight4xx(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	expired, _ := auth.Issue([]byte(jwtSecret), 1, -time.Hour, time.Now().Add(-2*time.Hour))
	forged, _ := auth.Issue([]byte("another-secret-another-secret-another"), 1, time.Hour, time.Now())
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1"}).SignedString([]byte(jwtSecret))
	unknownUser, _ := auth.Issue([]byte(jwtSecret), 999999, time.Hour, time.Now())
	good := string(jobBody("Engineer", "CV", ""))
	big := strings.Repeat("x", 20<<10+1)

	tests := []struct {
		name        string
		method      string
		path        string
		token       string
		contentType string
		body        string
		headers     []string
		want        int
		code        string
	}{
		{"malformed JSON", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":`, nil, 400, "invalid_json"},
		{"not an object", "POST", "/api/cover-letter", token, "application/json", `["a","b"]`, nil, 400, "invalid_json"},
		{"empty body", "POST", "/api/cover-letter", token, "application/json", ``, nil, 400, "invalid_json"},
		{"two objects", "POST", "/api/cover-letter", token, "application/json", good + good, nil, 400, "invalid_json"},
		{"jobDescription is a number", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":5,"cvText":"x"}`, nil, 400, "invalid_json"},
		{"cvText is an object", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"x","cvText":{}}`, nil, 400, "invalid_json"},
		{"tone is a bool", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"x","cvText":"y","tone":true}`, nil, 400, "invalid_json"},
		{"unknown field", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"x","cvText":"y","jobDesc":"z"}`, nil, 400, "invalid_json"},
		{"missing jobDescription", "POST", "/api/cover-letter", token, "application/json", `{"cvText":"y"}`, nil, 422, "validation_failed"},
		{"missing cvText", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"x"}`, nil, 422, "validation_failed"},
		{"blank jobDescription", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"   ","cvText":"y"}`, nil, 422, "validation_failed"},
		{"unknown tone", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"x","cvText":"y","tone":"sarcastic"}`, nil, 422, "validation_failed"},
		{"jobDescription over 20 kB", "POST", "/api/cover-letter", token, "application/json", string(mustJSON(map[string]string{"jobDescription": big, "cvText": "y"})), nil, 413, "field_too_large"},
		{"cvText over 50 kB", "POST", "/api/cover-letter", token, "application/json", string(mustJSON(map[string]string{"jobDescription": "x", "cvText": strings.Repeat("y", 50<<10+1)})), nil, 413, "field_too_large"},
		{"body over 100 kB", "POST", "/api/cover-letter", token, "application/json", string(mustJSON(map[string]string{"jobDescription": "x", "cvText": strings.Repeat("y", 101<<10)})), nil, 413, "body_too_large"},
		{"wrong content type", "POST", "/api/cover-letter", token, "text/plain", good, nil, 415, "unsupported_media_type"},
		{"no content type", "POST", "/api/cover-letter", token, "", good, nil, 415, "unsupported_media_type"},
		{"bad idempotency key", "POST", "/api/cover-letter", token, "application/json", good, []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "invalid_idempotency_key"},
		{"no token", "POST", "/api/cover-letter", "", "application/json", good, nil, 401, "unauthorized"},
		{"expired token", "POST", "/api/cover-letter", expired, "application/json", good, nil, 401, "unauthorized"},
		{"forged token", "POST", "/api/cover-letter", forged, "application/json", good, nil, 401, "unauthorized"},
		{"token without exp", "GET", "/api/cover-letter/jobs", noExp, "", "", nil, 401, "unauthorized"},
		{"garbage token", "GET", "/api/cover-letter/jobs", "abc.def.ghi", "", "", nil, 401, "unauthorized"},
		{"unknown user", "POST", "/api/cover-letter", unknownUser, "application/json", good, nil, 401, "unknown_user"},
		{"bad jobId", "GET", "/api/cover-letter/status/..%2F..%2Fetc", token, "", "", nil, 400, "invalid_job_id"},
		{"jobId too long", "GET", "/api/cover-letter/status/" + strings.Repeat("a", 65), token, "", "", nil, 400, "invalid_job_id"},
		{"unknown jobId", "GET", "/api/cover-letter/status/0190c0de-0000-7000-8000-000000000000", token, "", "", nil, 404, "not_found"},
		{"bad cursor", "GET", "/api/cover-letter/jobs?cursor=%%%", token, "", "", nil, 400, "invalid_cursor"},
		{"forged cursor", "GET", "/api/cover-letter/jobs?cursor=bm90LWEtY3Vyc29y", token, "", "", nil, 400, "invalid_cursor"},
		{"limit zero", "GET", "/api/cover-letter/jobs?limit=0", token, "", "", nil, 400, "invalid_query"},
		{"limit too big", "GET", "/api/cover-letter/jobs?limit=101", token, "", "", nil, 400, "invalid_query"},
		{"limit not a number", "GET", "/api/cover-letter/jobs?limit=ten", token, "", "", nil, 400, "invalid_query"},
		{"unknown status filter", "GET", "/api/cover-letter/jobs?status=done", token, "", "", nil, 400, "invalid_query"},
		{"unknown route", "GET", "/api/cover-letter/nope/more", token, "", "", nil, 404, "not_found"},
		// A client's mistake is never an outage (503 invites retries forever): PostgreSQL
		// refuses NUL in text, so the api refuses it first; invalid UTF-8 is refused, not
		// silently replaced.
		{"NUL in jobDescription", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"a\u0000b","cvText":"y"}`, nil, 422, "validation_failed"},
		{"NUL in cvText", "POST", "/api/cover-letter", token, "application/json", `{"jobDescription":"x","cvText":"\u0000"}`, nil, 422, "validation_failed"},
		{"invalid UTF-8 in cvText", "POST", "/api/cover-letter", token, "application/json", "{\"jobDescription\":\"x\",\"cvText\":\"caf\xe9\"}", nil, 422, "validation_failed"},
		{"known path, wrong method", "PUT", "/api/cover-letter", token, "application/json", good, nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, b.apiURL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("%d with a body that is not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tt.want || out.Error.Code != tt.code || out.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, out.Error, tt.want, tt.code)
			}
			if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
				t.Fatalf("405 with Allow %q, want POST", resp.Header.Get("Allow"))
			}
		})
	}
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs`); n != 0 {
		t.Fatalf("bad requests created %d jobs", n)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestMetricsSurviveRequestsOnOneKeepAliveConnection: Fiber reuses a connection's request
// buffer; a metric label or map key kept from it changes under the next request on the same
// connection. Three requests on one keep-alive connection must leave /metrics whole.
func TestMetricsSurviveRequestsOnOneKeepAliveConnection(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	addr := strings.TrimPrefix(b.apiURL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for _, req := range []string{
		"GET /api/cover-letter/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /api/cover-letter/some-job HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS /api/cover-letter/status/another-job HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 2 {
		resp, err := http.Get(b.apiURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics answered %d: %.300s", resp.StatusCode, body)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if strings.Contains(line, `method="`) && !regexp.MustCompile(`method="(GET|POST|DELETE|OPTIONS|HEAD|PUT|PATCH)"`).MatchString(line) {
				t.Fatalf("a metric line with a corrupt method label: %s", line)
			}
		}
	}
}

// TestAnOversizedBodyGetsItsAnswer: the api refuses a body over the limit from its
// Content-Length, before reading it, and closes the connection. Closed with the body still
// arriving, the kernel answers the client with a reset, which can discard the 413 before
// the client reads it: the client sees a network error and may retry forever. The api
// closes its side gently (it reads and drops what still arrives), so the client gets 413.
func TestAnOversizedBodyGetsItsAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	for _, size := range []int{101 << 10, 1 << 20, 4 << 20} {
		body := mustJSON(map[string]string{"jobDescription": "x", "cvText": strings.Repeat("y", size)})
		for i := range 10 {
			req, err := http.NewRequest("POST", b.apiURL+"/api/cover-letter", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%d bytes, try %d: %v", len(body), i, err)
			}
			var out struct {
				Error struct{ Code string } `json:"error"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || out.Error.Code != "body_too_large" {
				t.Fatalf("%d bytes, try %d: %d %+v %v, want 413 body_too_large", len(body), i, resp.StatusCode, out.Error, err)
			}
		}
	}
}
