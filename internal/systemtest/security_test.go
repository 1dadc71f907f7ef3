package systemtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// TestUserJobQuotaPerMinute: past USER_JOBS_PER_MINUTE a user gets 429 with Retry-After and a
// JSON error; other users and idempotent replays are not affected.
func TestUserJobQuotaPerMinute(t *testing.T) {
	t.Parallel()
	b := setup(t, options{api: env{"USER_JOBS_PER_MINUTE": "3"}})
	alice, bob := b.user("a@example.com"), b.user("b@example.com")
	body := jobBody("Role at Acme", "CV", "")
	first := b.do("POST", "/api/cover-letter", alice, body, "Idempotency-Key", "k1")
	for range 2 {
		b.submit(alice, "Role at Acme", "CV", "")
	}
	r := b.do("POST", "/api/cover-letter", alice, jobBody("One too many", "CV", ""))
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), `"code":"quota_exceeded"`) || retry < 1 || retry > 60 {
		t.Fatalf("4th job in a minute = %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	again := b.do("POST", "/api/cover-letter", alice, body, "Idempotency-Key", "k1")
	var a, c struct{ JobID string }
	first.json(t, &a)
	again.json(t, &c)
	if again.Status != http.StatusOK || a.JobID == "" || a.JobID != c.JobID {
		t.Fatalf("an idempotent replay over the quota = %d %s", again.Status, again.Body)
	}
	b.submit(bob, "Role at Acme", "CV", "") // bob has his own quota
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs`); n != 4 {
		t.Fatalf("%d jobs, want 3 for alice and 1 for bob", n)
	}
}

// TestUserTokenBudgetPerDay: once a user's completed jobs used USER_TOKENS_PER_DAY tokens
// today, new jobs wait for tomorrow (429, Retry-After until midnight UTC).
func TestUserTokenBudgetPerDay(t *testing.T) {
	t.Parallel()
	b := setup(t, options{api: env{"USER_TOKENS_PER_DAY": "50"}})
	token := b.user("a@example.com")
	id := b.submit(token, "Role at Acme", "CV", "")
	if j := b.waitFinal(id, 30*time.Second); j.PromptTokens+j.CompletionTokens < 50 {
		t.Fatalf("the first job used only %d tokens; the test needs more than the budget", j.PromptTokens+j.CompletionTokens)
	}
	r := b.do("POST", "/api/cover-letter", token, jobBody("Another", "CV", ""))
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	now := time.Now().UTC()
	untilMidnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), "tokens") ||
		(time.Duration(retry)*time.Second-untilMidnight).Abs() > 5*time.Second {
		t.Fatalf("over the token budget = %d %s (Retry-After %d s, midnight in %s)", r.Status, r.Body, retry, untilMidnight)
	}
}

// TestUserRequestsPerMinute: past USER_REQUESTS_PER_MINUTE on a replica, any API request of
// that user gets 429 rate_limited with Retry-After; health checks are never limited.
func TestUserRequestsPerMinute(t *testing.T) {
	t.Parallel()
	b := setup(t, options{api: env{"USER_REQUESTS_PER_MINUTE": "5"}})
	alice, bob := b.user("a@example.com"), b.user("b@example.com")
	for i := range 5 {
		if r := b.do("GET", "/api/cover-letter/jobs", alice, nil); r.Status != 200 {
			t.Fatalf("request %d = %d", i, r.Status)
		}
	}
	r := b.do("GET", "/api/cover-letter/jobs", alice, nil)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), `"code":"rate_limited"`) || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th request = %d %s", r.Status, r.Body)
	}
	if r := b.do("GET", "/api/cover-letter/jobs", bob, nil); r.Status != 200 {
		t.Fatalf("another user = %d", r.Status)
	}
	if r := b.do("GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz = %d", r.Status)
	}
}

// TestCancelStopsTheJob: DELETE cancels a processing job — the worker abandons its LLM call
// and stores nothing — and a pending one; a finished job is 409, another user's 404.
func TestCancelStopsTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	alice, bob := b.user("a@example.com"), b.user("b@example.com")

	slow := b.submit(alice, "Slow role [[fakeopenai:latency=20s]]", "CV", "")
	b.waitCount(1, 10*time.Second, `SELECT count(*) FROM cover_letter_jobs WHERE job_id = $1 AND status = 'processing'`, slow)
	// The call is in flight: the worker must abandon it, not just not start it.
	testkit.Eventually(t, 10*time.Second, func() bool { return b.llm.Stats().Requests > 0 }, "the LLM call of the slow job")
	if r := b.do("DELETE", "/api/cover-letter/"+slow, bob, nil); r.Status != http.StatusNotFound {
		t.Fatalf("bob cancelling alice's job = %d", r.Status)
	}
	start := time.Now()
	r := b.do("DELETE", "/api/cover-letter/"+slow, alice, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"status":"cancelled"`) {
		t.Fatalf("cancel = %d %s", r.Status, r.Body)
	}
	// The worker hears of it and stops the call at once, not after 20 s.
	testkit.Eventually(t, 5*time.Second, func() bool { return b.llm.Stats().Canceled > 0 },
		"the worker abandoning the LLM call of a cancelled job")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the call stopped %s after the cancel", took)
	}
	time.Sleep(200 * time.Millisecond)
	j, _ := b.store.GetAny(context.Background(), slow)
	if j.Status != job.StatusCancelled || j.CoverLetter != "" || j.CompletedAt == nil {
		t.Fatalf("cancelled job = %s, letter %q", j.Status, j.CoverLetter)
	}
	if r := b.do("DELETE", "/api/cover-letter/"+slow, alice, nil); r.Status != http.StatusConflict {
		t.Fatalf("cancelling twice = %d", r.Status)
	}

	// A pending job: stop the worker, submit, cancel, start a worker: it stays cancelled.
	b.workers[0].stop()
	pending := b.submit(alice, "Pending role", "CV", "")
	if r := b.do("DELETE", "/api/cover-letter/"+pending, alice, nil); r.Status != http.StatusOK {
		t.Fatalf("cancel pending = %d %s", r.Status, r.Body)
	}
	b.startWorker()
	done := b.submit(alice, "Later role", "CV", "")
	b.waitFinal(done, 30*time.Second) // the queue has been worked through
	if j, _ := b.store.GetAny(context.Background(), pending); j.Status != job.StatusCancelled {
		t.Fatalf("cancelled pending job became %s", j.Status)
	}
	if r := b.do("DELETE", "/api/cover-letter/"+done, alice, nil); r.Status != http.StatusConflict ||
		!strings.Contains(string(r.Body), "job_finished") {
		t.Fatalf("cancelling a completed job = %d %s", r.Status, r.Body)
	}
	if r := b.do("DELETE", "/api/cover-letter/bad%20id", alice, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("cancel with a bad id = %d", r.Status)
	}
	// Cancellations are announced like results.
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)
	if n := int(b.llm.Stats().Completed); n != 1 {
		t.Fatalf("the LLM wrote %d letters; only the last job should have one", n)
	}
}

// TestCancelWhileTheWorkerDoesNotListen: a cancellation announced while the worker's LISTEN
// connection is down (PostgreSQL ended it; the listener reconnects a second later) still stops
// the job: once it listens again, the worker asks which of its jobs were cancelled meanwhile.
func TestCancelWhileTheWorkerDoesNotListen(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	alice := b.user("a@example.com")
	slow := b.submit(alice, "Slow role [[fakeopenai:latency=20s]]", "CV", "")
	b.waitCount(1, 10*time.Second, `SELECT count(*) FROM cover_letter_jobs WHERE job_id = $1 AND status = 'processing'`, slow)
	testkit.Eventually(t, 10*time.Second, func() bool { return b.llm.Stats().Requests > 0 }, "the LLM call of the slow job")

	testkit.WaitListening(t, b.pool, database.JobCancelledChannel)
	testkit.EndListeners(t, b.pool, database.JobCancelledChannel)
	if r := b.do("DELETE", "/api/cover-letter/"+slow, alice, nil); r.Status != http.StatusOK {
		t.Fatalf("cancel = %d %s", r.Status, r.Body)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return b.llm.Stats().Canceled > 0 },
		"the worker abandoning the LLM call of a job cancelled while it did not listen")
}

// TestJWTAttacks: every forged or malformed token is 401 over HTTP, whatever the route.
func TestJWTAttacks(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.user("a@example.com") // user 1
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := jwt.MapClaims{"sub": "1", "exp": time.Now().Add(time.Hour).Unix()}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tokens := map[string]string{
		"alg none":                    none,
		"RS256 (algorithm confusion)": sign(jwt.SigningMethodRS256, rsaKey, claims),
		"ES256":                       sign(jwt.SigningMethodES256, ecKey, claims),
		"HS512 with the right secret": sign(jwt.SigningMethodHS512, []byte(jwtSecret), claims),
		"wrong signature":             sign(jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-xx"), claims),
		"missing exp":                 sign(jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": "1"}),
		"expired":                     sign(jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": "1", "exp": time.Now().Add(-time.Hour).Unix()}),
		"non-numeric sub":             sign(jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}),
		"numeric sub as a number":     sign(jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": 1, "exp": time.Now().Add(time.Hour).Unix()}),
		"unknown user":                sign(jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": "424242", "exp": time.Now().Add(time.Hour).Unix()}),
		"tampered payload":            tamper(sign(jwt.SigningMethodHS256, []byte(jwtSecret), claims)),
		"not a JWT":                   "hello",
	}
	for name, token := range tokens {
		for _, route := range []struct{ method, path string }{{"GET", "/api/cover-letter/jobs"}, {"POST", "/api/cover-letter"}} {
			var body []byte
			if route.method == "POST" {
				body = jobBody("x", "y", "")
			}
			if r := b.do(route.method, route.path, token, body); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), `"error"`) {
				t.Errorf("%s on %s %s = %d %s", name, route.method, route.path, r.Status, r.Body)
			}
		}
	}
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs`); n != 0 {
		t.Fatalf("forged tokens created %d jobs", n)
	}
}

// tamper changes the payload's sub to 2, keeping the signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"2","exp":9999999999}`))
	return strings.Join(parts, ".")
}

// TestOversizeRequestsAreRefused: headers and URLs past the limits get 431/414-class answers,
// not a crash, and the server goes on.
func TestOversizeRequestsAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	big := strings.Repeat("x", 20<<10)
	r := b.do("GET", "/api/cover-letter/jobs", token, nil, "X-Padding", big)
	if r.Status != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(r.Body), `"code":"headers_too_large"`) {
		t.Fatalf("20 kB header = %d %s", r.Status, r.Body)
	}
	// A 20 kB URL: refused with 431, or the connection is cut while the client still writes
	// it (the server stops reading at its 16 kB buffer). Either way nothing breaks.
	req, _ := http.NewRequest("GET", b.apiURL+"/api/cover-letter/jobs?cursor="+big, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge && resp.StatusCode != http.StatusRequestURITooLong {
			t.Fatalf("20 kB URL = %d", resp.StatusCode)
		}
	} else if !strings.Contains(err.Error(), "connection reset") && !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("20 kB URL: unexpected error %.200s", err)
	}
	if r := b.do("GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz after oversize requests = %d", r.Status)
	}
}

// TestHealthzAnswersWhile500SlowClientsHang: 500 clients that send half a request and then
// nothing do not keep /healthz from answering promptly; the server drops them at its read
// timeout.
func TestHealthzAnswersWhile500SlowClientsHang(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	addr := strings.TrimPrefix(b.apiURL, "http://")
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("POST /api/cover-letter HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"job"))
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) < 500 {
		t.Fatalf("only %d of 500 slow clients connected", len(conns))
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for i := range 10 {
		start := time.Now()
		resp, err := client.Get(b.apiURL + "/healthz")
		if err != nil {
			t.Fatalf("healthz %d with 500 slow clients: %v", i, err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != 200 || took > 500*time.Millisecond {
			t.Fatalf("healthz %d = %d in %s", i, resp.StatusCode, took)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
