package riverpeer

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
)

const secret = "riverpeer-test-secret-0123456789abcdef"

// peerDB is a fresh database migrated for the peer, with user 7.
func peerDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	dbURL := testkit.NewEmptyDatabaseURL(t)
	if err := database.EnsureDatabase(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	pool, err := database.Connect(ctx, dbURL, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(ctx, pool, 7, "seven@example.com"); err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestAPIAnswersAsOurs(t *testing.T) {
	pool := peerDB(t)
	a, err := NewAPI(pool, []byte(secret), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	app := a.App()
	token := func(id int64) string {
		tok, err := auth.Issue([]byte(secret), id, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	body := `{"jobDescription":"Go developer","cvText":"Ten years of Go"}`
	post := func(tok, key, ctype, body string) (int, job.Accepted, string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/api/cover-letter", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := app.Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var acc job.Accepted
		_ = json.Unmarshal(b, &acc) // error bodies leave it empty
		return resp.StatusCode, acc, string(b)
	}
	refusals := []struct {
		name, tok, key, ctype, body string
		status                      int
		code                        string
	}{
		{"no token", "", "", "application/json", body, 401, "unauthorized"},
		{"bad token", "x.y.z", "", "application/json", body, 401, "invalid_token"},
		{"unknown user", token(8), "", "application/json", body, 401, "unknown_user"},
		{"not JSON", token(7), "", "text/plain", body, 415, "unsupported_media_type"},
		{"no cv", token(7), "", "application/json", `{"jobDescription":"a"}`, 422, "validation_failed"},
		{"bad key", token(7), "a b", "application/json", body, 400, "invalid_idempotency_key"},
	}
	for _, r := range refusals {
		if status, _, b := post(r.tok, r.key, r.ctype, r.body); status != r.status || !strings.Contains(b, `"code":"`+r.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", r.name, status, b, r.status, r.code)
		}
	}
	status, first, b := post(token(7), "k-1", "application/json", body)
	if status != 202 || first.JobID == "" || first.Status != job.StatusPending {
		t.Fatalf("first post: %d %s", status, b)
	}
	if status, again, b := post(token(7), "k-1", "application/json", body); status != 200 || again.JobID != first.JobID {
		t.Fatalf("same key: %d %s, want 200 with job %s", status, b, first.JobID)
	}
	if status, other, b := post(token(7), "k-2", "application/json", body); status != 202 || other.JobID == first.JobID {
		t.Fatalf("another key: %d %s, want 202 with a new job", status, b)
	}
}

func TestWorkerStoresTheLetter(t *testing.T) {
	pool := peerDB(t)
	ctx := context.Background()
	fake, err := fakeopenai.New(fakeopenai.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	log := slog.New(slog.DiscardHandler)
	model := llm.New(llm.Config{BaseURL: srv.URL + "/v1", APIKey: "sk-test", Model: "fake-gpt", Telemetry: telemetry.New(log, noop.NewTracerProvider())})
	insert, err := newClient(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := insert.Insert(ctx, Args{UserID: 7, JobDescription: "Go developer", CVText: "Ten years of Go", Tone: job.ToneConcise}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(pool, model, 2, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	var state, letter string
	testkit.Eventually(t, 15*time.Second, func() bool {
		err := pool.QueryRow(ctx, `SELECT j.state, coalesce(l.letter, '') FROM river_job j LEFT JOIN cover_letters l ON l.job_id = j.id WHERE j.id = $1`, res.Job.ID).Scan(&state, &letter)
		return err == nil && state == "completed"
	}, "job never completed")
	if len(strings.Fields(letter)) < 20 {
		t.Fatalf("stored letter %q", letter)
	}
}
