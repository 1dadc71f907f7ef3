package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/ops"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/schedule"
)

var opsSecret = []byte(strings.Repeat("o", auth.MinSecretBytes))

// fakeOps is an OpsSource with canned answers; it records the requeue targets it gets.
type fakeOps struct {
	queues   []ops.QueueStat
	counts   map[job.Status]int
	kinds    map[string]map[job.Status]int
	failures []jobstore.Failure
	letters  []dlq.Entry
	backlog  outbox.Backlog
	tasks    []schedule.Status
	err      error         // of every read
	slow     time.Duration // how long QueueStats takes

	result     dlq.Result
	requeueErr error
	mu         sync.Mutex
	targets    []dlq.Target
}

func (f *fakeOps) QueueStats(context.Context) ([]ops.QueueStat, error) {
	time.Sleep(f.slow)
	return f.queues, f.err
}
func (f *fakeOps) Tables(_ context.Context, failures int) (ops.Tables, error) {
	return ops.Tables{JobsByStatus: jobstore.StatusCounts{Counts: f.counts}, JobsByKind: f.kinds,
		RecentFailures: f.failures[:min(failures, len(f.failures))], Outbox: f.backlog}, f.err
}
func (f *fakeOps) DeadLetters(_ context.Context, limit int) ([]dlq.Entry, error) {
	return f.letters[:min(limit, len(f.letters))], f.err
}
func (f *fakeOps) Schedules(context.Context) ([]schedule.Status, error) { return f.tasks, f.err }

func (f *fakeOps) RequeueDeadLetters(_ context.Context, t dlq.Target) (dlq.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, t)
	return f.result, f.requeueErr
}

// fakeUsers hands out user ids by email; every id it handed out exists.
type fakeUsers struct {
	mu   sync.Mutex
	ids  map[string]int64
	next int64
	err  error
}

func (u *fakeUsers) FindOrAddUser(_ context.Context, email string) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return 0, u.err
	}
	if u.ids == nil {
		u.ids = map[string]int64{}
	}
	if id, ok := u.ids[email]; ok {
		return id, nil
	}
	u.next++
	u.ids[email] = u.next
	return u.next, nil
}

func (u *fakeUsers) UserExists(_ context.Context, id int64) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return id > 0 && id <= u.next, nil
}

// opsApp serves the ops and dev routes as the server does: signed-in admins only for /api/ops.
func opsApp(src OpsSource, users *fakeUsers, jaegerURL string) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.DiscardHandler))})
	authn := newAuthenticator(auth.NewVerifier(opsSecret), users, nil, nil)
	app.Get("/api/ops/overview", authn.user, requireAdmin(), handleOpsOverview(src, jaegerURL))
	app.Post("/api/ops/dlq/requeue", authn.user, requireAdmin(), handleOpsRequeue(src))
	app.Post("/dev/token", handleDevToken(users, opsSecret))
	return app
}

// tokenFor signs in a user of users (created for the purpose), an admin one if admin.
func tokenFor(t *testing.T, users *fakeUsers, admin bool) string {
	t.Helper()
	id, err := users.FindOrAddUser(context.Background(), fmt.Sprintf("user-%v@example.com", admin))
	if err != nil {
		t.Fatal(err)
	}
	var opts []auth.IssueOption
	if admin {
		opts = append(opts, auth.AsAdmin())
	}
	token, err := auth.Issue(opsSecret, id, time.Hour, time.Now(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// call sends a request (body as JSON when not "") and returns the status and decoded body.
func call(t *testing.T, app *fiber.App, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	}
	if token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+token)
	}
	return send(t, app, req)
}

func send(t *testing.T, app *fiber.App, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := app.Test(req, 5000)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", req.Method, req.URL.Path, raw, err)
	}
	return resp.StatusCode, out
}

// errorCode is the code of an error body, "" if it is not one.
func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestOpsNeedsAnAdmin(t *testing.T) {
	t.Parallel()
	users := &fakeUsers{}
	src := &fakeOps{}
	app := opsApp(src, users, "")
	plain, admin := tokenFor(t, users, false), tokenFor(t, users, true)
	t.Cleanup(func() { // after the subtests
		src.mu.Lock()
		defer src.mu.Unlock()
		if len(src.targets) != 1 {
			t.Errorf("the source requeued %d times, want once (for the admin)", len(src.targets))
		}
	})
	for _, tc := range []struct {
		method, path, body string
	}{
		{"GET", "/api/ops/overview", ""},
		{"POST", "/api/ops/dlq/requeue", `{"all":true}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			if status, body := call(t, app, tc.method, tc.path, "", tc.body); status != 401 || errorCode(body) != "unauthorized" {
				t.Errorf("no token: %d %v, want 401 unauthorized", status, body)
			}
			if status, body := call(t, app, tc.method, tc.path, plain, tc.body); status != 403 || errorCode(body) != "forbidden" {
				t.Errorf("user token: %d %v, want 403 forbidden", status, body)
			}
			if status, body := call(t, app, tc.method, tc.path, admin, tc.body); status != 200 {
				t.Errorf("admin token: %d %v, want 200", status, body)
			}
		})
	}
}

func TestRequireAdminWithoutIdentityRefuses(t *testing.T) {
	t.Parallel()
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.DiscardHandler))})
	app.Get("/", requireAdmin(), func(c *fiber.Ctx) error { return c.JSON(fiber.Map{}) })
	if status, body := send(t, app, httptest.NewRequest("GET", "/", nil)); status != 403 || errorCode(body) != "forbidden" {
		t.Fatalf("%d %v, want 403 forbidden", status, body)
	}
}

func TestOpsOverview(t *testing.T) {
	t.Parallel()

	t.Run("NothingYetIsZerosAndEmptyLists", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		app := opsApp(&fakeOps{}, users, "")
		status, body := call(t, app, "GET", "/api/ops/overview", tokenFor(t, users, true), "")
		if status != 200 {
			t.Fatalf("status %d %v", status, body)
		}
		want := map[string]any{
			"queues": []any{}, "recentFailures": []any{}, "dlq": []any{},
			"jobsByStatus": map[string]any{"pending": 0.0, "processing": 0.0, "completed": 0.0, "failed": 0.0, "cancelled": 0.0},
			"jobsByKind":   map[string]any{},
			"outbox":       map[string]any{"waiting": 0.0, "parked": 0.0, "oldestDueSeconds": 0.0},
			"schedules":    []any{},
		}
		if fmt.Sprint(body) != fmt.Sprint(want) {
			t.Errorf("overview = %v\nwant       %v", body, want)
		}
	})

	t.Run("SaysHowLongEachSourceTook", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		req := httptest.NewRequest("GET", "/api/ops/overview", nil)
		req.Header.Set("Authorization", "Bearer "+tokenFor(t, users, true))
		resp, err := opsApp(&fakeOps{slow: 30 * time.Millisecond}, users, "").Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		timing := resp.Header.Get("Server-Timing")
		m := regexp.MustCompile(`^queues;dur=(\d+\.\d\d), tables;dur=[\d.]+, dlq;dur=[\d.]+, schedules;dur=[\d.]+$`).FindStringSubmatch(timing)
		if m == nil {
			t.Fatalf("Server-Timing %q, want every source's time", timing)
		}
		if ms, _ := strconv.ParseFloat(m[1], 64); ms < 30 || ms > 1000 {
			t.Fatalf("Server-Timing %q: the queues took 30 ms", timing)
		}
	})

	t.Run("ShowsWhatTheSourceHolds", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		updated := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
		src := &fakeOps{
			queues: []ops.QueueStat{{Name: job.QueueGenerate, Messages: 4, Consumers: 2}, {Name: job.QueueDLQ, Messages: 1}},
			counts: map[job.Status]int{job.StatusFailed: 2, job.StatusCompleted: 7},
			kinds:  map[string]map[job.Status]int{"test.other": {job.StatusPending: 3}},
			failures: []jobstore.Failure{
				{ID: "job-2", UserID: 9, Error: "LLM rejected the key", UpdatedAt: updated,
					TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
				{ID: "job-1", UserID: 8, Error: "attempts exhausted", UpdatedAt: updated, TraceParent: "garbage"},
			},
			letters: []dlq.Entry{
				{JobID: "job-2", MessageID: "job-2/0", Reason: job.ReasonLLMRejected, Error: "401"},
				{MessageID: "junk", Reason: job.ReasonInvalidMessage, Error: "invalid JSON"},
			},
			backlog: outbox.Backlog{Waiting: 3, Parked: 1, OldestDue: 1500 * time.Millisecond},
			tasks: []schedule.Status{
				{Task: job.KindRetention, Kind: job.KindRetention, Cron: "17 3 * * *", NextRun: updated.Add(time.Hour),
					LastSlot: updated, LastOutcome: "completed", LastJobID: "maintenance.retention:20260301T123000Z"},
				{Task: "test.never", Kind: "test.never", Cron: "@daily"},
			},
		}
		app := opsApp(src, users, "http://127.0.0.1:16686")
		status, body := call(t, app, "GET", "/api/ops/overview", tokenFor(t, users, true), "")
		if status != 200 {
			t.Fatalf("status %d %v", status, body)
		}
		want := map[string]any{
			"queues": []any{
				map[string]any{"name": job.QueueGenerate, "messages": 4.0, "consumers": 2.0},
				map[string]any{"name": job.QueueDLQ, "messages": 1.0, "consumers": 0.0},
			},
			"jobsByStatus": map[string]any{"pending": 0.0, "processing": 0.0, "completed": 7.0, "failed": 2.0, "cancelled": 0.0},
			"jobsByKind":   map[string]any{"test.other": map[string]any{"pending": 3.0}},
			"recentFailures": []any{
				map[string]any{"jobId": "job-2", "userId": 9.0, "error": "LLM rejected the key", "updatedAt": "2026-03-01T12:30:00Z",
					"traceId": "4bf92f3577b34da6a3ce929d0e0e4736"},
				map[string]any{"jobId": "job-1", "userId": 8.0, "error": "attempts exhausted", "updatedAt": "2026-03-01T12:30:00Z"},
			},
			"dlq": []any{
				map[string]any{"jobId": "job-2", "messageId": "job-2/0", "reason": job.ReasonLLMRejected, "error": "401"},
				map[string]any{"messageId": "junk", "reason": job.ReasonInvalidMessage, "error": "invalid JSON"},
			},
			"outbox":    map[string]any{"waiting": 3.0, "parked": 1.0, "oldestDueSeconds": 1.5},
			"jaegerUrl": "http://127.0.0.1:16686",
			"schedules": []any{
				map[string]any{"task": job.KindRetention, "kind": job.KindRetention, "cron": "17 3 * * *", "nextRun": "2026-03-01T13:30:00Z",
					"lastRun": "2026-03-01T12:30:00Z", "lastOutcome": "completed", "lastJobId": "maintenance.retention:20260301T123000Z"},
				map[string]any{"task": "test.never", "kind": "test.never", "cron": "@daily"},
			},
		}
		if fmt.Sprint(body) != fmt.Sprint(want) {
			t.Errorf("overview = %v\nwant       %v", body, want)
		}
	})

	t.Run("ShowsAtMost20FailuresAnd50DeadLetters", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		src := &fakeOps{failures: make([]jobstore.Failure, 30), letters: make([]dlq.Entry, 70)}
		status, body := call(t, opsApp(src, users, ""), "GET", "/api/ops/overview", tokenFor(t, users, true), "")
		failures, _ := body["recentFailures"].([]any)
		letters, _ := body["dlq"].([]any)
		if status != 200 || len(failures) != 20 || len(letters) != 50 {
			t.Fatalf("status %d, %d failures, %d dead letters; want 200, 20, 50", status, len(failures), len(letters))
		}
	})

	t.Run("AnUnavailableSourceIs503", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		app := opsApp(&fakeOps{err: errors.New("broker: waiting for RabbitMQ: context deadline exceeded")}, users, "")
		status, body := call(t, app, "GET", "/api/ops/overview", tokenFor(t, users, true), "")
		if status != 503 || errorCode(body) != "unavailable" {
			t.Fatalf("%d %v, want 503 unavailable", status, body)
		}
	})
}

func TestOpsRequeue(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name   string
		body   string
		target dlq.Target
	}{
		{"OneJob", `{"jobId":"job-1"}`, dlq.Target{JobID: "job-1"}},
		{"All", `{"all":true}`, dlq.Target{All: true}},
		{"NullOtherField", `{"jobId":"job-1","all":null}`, dlq.Target{JobID: "job-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			users := &fakeUsers{}
			src := &fakeOps{result: dlq.Result{Requeued: 3, Skipped: 1, Seen: 4}}
			status, body := call(t, opsApp(src, users, ""), "POST", "/api/ops/dlq/requeue", tokenFor(t, users, true), tc.body)
			if want := map[string]any{"requeued": 3.0, "skipped": 1.0}; status != 200 || fmt.Sprint(body) != fmt.Sprint(want) {
				t.Fatalf("%d %v, want 200 %v", status, body, want)
			}
			if len(src.targets) != 1 || src.targets[0] != tc.target {
				t.Errorf("targets = %+v, want %+v", src.targets, tc.target)
			}
		})
	}

	t.Run("BadRequests", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		src := &fakeOps{}
		app := opsApp(src, users, "")
		admin := tokenFor(t, users, true)
		for _, tc := range []struct {
			body   string
			status int
			code   string
		}{
			{`{"jobId":`, 400, "invalid_json"},
			{`[]`, 400, "invalid_json"},
			{`{"all":true} {}`, 400, "invalid_json"},
			{`{"all":true,"force":true}`, 400, "invalid_json"},
			{`{"all":"yes"}`, 400, "invalid_json"},
			{`{}`, 422, "validation_failed"},
			{`{"all":false}`, 422, "validation_failed"},
			{`{"jobId":"job-1","all":true}`, 422, "validation_failed"},
			{`{"jobId":"job-1","all":false}`, 422, "validation_failed"},
			{`{"jobId":""}`, 422, "validation_failed"},
			{`{"jobId":"no/such id"}`, 422, "validation_failed"},
		} {
			status, body := call(t, app, "POST", "/api/ops/dlq/requeue", admin, tc.body)
			if status != tc.status || errorCode(body) != tc.code {
				t.Errorf("body %s: %d %v, want %d %s", tc.body, status, body, tc.status, tc.code)
			}
		}
		req := httptest.NewRequest("POST", "/api/ops/dlq/requeue", strings.NewReader(`{"all":true}`))
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+admin)
		req.Header.Set(fiber.HeaderContentType, "text/plain")
		if status, body := send(t, app, req); status != 415 || errorCode(body) != "unsupported_media_type" {
			t.Errorf("text/plain: %d %v, want 415", status, body)
		}
		if len(src.targets) != 0 {
			t.Errorf("bad requests reached the source: %+v", src.targets)
		}
	})

	t.Run("SourceErrors", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			err    error
			status int
			code   string
		}{
			{&dlq.NotRequeuedError{JobID: "job-1"}, 404, "not_found"},
			{fmt.Errorf("ops: %w", &dlq.NotRequeuedError{JobID: "job-1", Status: job.StatusCompleted}), 409, "not_failed"},
			{errors.New("jobstore: requeue job-1: connection refused"), 503, "unavailable"},
		} {
			users := &fakeUsers{}
			app := opsApp(&fakeOps{requeueErr: tc.err}, users, "")
			status, body := call(t, app, "POST", "/api/ops/dlq/requeue", tokenFor(t, users, true), `{"jobId":"job-1"}`)
			if status != tc.status || errorCode(body) != tc.code {
				t.Errorf("%v: %d %v, want %d %s", tc.err, status, body, tc.status, tc.code)
			}
		}
	})
}
