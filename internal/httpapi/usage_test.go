package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/testkit"
)

// usageStore is the api's UsageSource on a real database.
type usageStore struct {
	*analytics.Store
	jobs *jobstore.Store
}

func (u usageStore) TokensToday(ctx context.Context, userID int64) (int64, time.Time, error) {
	return u.jobs.TokensToday(ctx, userID)
}

// Refresh checks the arguments as the api's does (the enqueue itself: the browser test).
func (u usageStore) Refresh(_ context.Context, args json.RawMessage) (string, error) {
	if _, err := kinds.Analytics(kinds.AnalyticsDeps{}).Decode(args); err != nil {
		return "", err
	}
	return "analytics-1", nil
}

// The usage API reads the rollups: admins see everyone's, split as groupBy asks; a user sees
// their own days and what is left of today's token budget. Bad parameters are a 422.
func TestUsageAPI(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	ctx := context.Background()
	users := &fakeUsers{}
	plain, admin := tokenFor(t, users, false), tokenFor(t, users, true) // users 1 and 2
	now := time.Now().UTC()
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES (1, 'one@example.com'), (2, 'two@example.com')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, model, prompt_tokens, completion_tokens, created_at, completed_at)
		SELECT 'cl-' || g, 1 + g % 2, 'completed', 'd', 'c', 'gpt-4o-mini', 1000, 200, $1::timestamptz - g * interval '1 hour' - interval '2 s',
		       $1::timestamptz - g * interval '1 hour'
		FROM generate_series(0, 47) g`, now); err != nil {
		t.Fatal(err)
	}
	store := analytics.NewStore(pool)
	if _, err := store.Rollup(ctx, analytics.RollupOptions{Prices: analytics.DefaultPrices()}); err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.DiscardHandler))})
	authn := newAuthenticator(auth.NewVerifier(opsSecret), users, nil, nil)
	src := usageStore{store, jobstore.New(pool)}
	app.Get("/api/ops/usage", authn.user, requireAdmin(), handleOpsUsage(src))
	app.Get("/api/me/usage", authn.user, handleMyUsage(src, 5000))
	app.Post("/api/ops/usage/refresh", authn.user, requireAdmin(), handleOpsUsageRefresh(src))

	if status, body := call(t, app, "GET", "/api/ops/usage", plain, ""); status != 403 {
		t.Errorf("a user's token: %d %v, want 403", status, body)
	}
	status, body := call(t, app, "GET", "/api/ops/usage", admin, "")
	totals, _ := body["totals"].(map[string]any)
	if status != 200 || totals["jobs"] != 48.0 || totals["promptTokens"] != 48_000.0 || totals["costMicros"] != 48*270.0 || body["grain"] != "day" {
		t.Fatalf("admin, defaults: %d %v", status, body)
	}
	from := url.QueryEscape(now.Add(-3 * time.Hour).Format(time.RFC3339))
	status, body = call(t, app, "GET", "/api/ops/usage?groupBy=hour,model&from="+from, admin, "")
	rows, _ := body["rows"].([]any)
	if status != 200 || len(rows) != 4 {
		t.Fatalf("by hour and model from 3 hours ago: %d %v, want 4 rows", status, body)
	}
	if row := rows[0].(map[string]any); row["model"] != "gpt-4o-mini" || row["userId"] != nil || row["p95Ms"] != 2000.0 || row["outcome"] != "completed" {
		t.Errorf("row %v", row)
	}
	status, body = call(t, app, "GET", "/api/ops/usage?groupBy=day,user", admin, "")
	if rows, _ := body["rows"].([]any); status != 200 || len(rows) == 0 || rows[0].(map[string]any)["userId"] == nil {
		t.Fatalf("by day and user: %d %v", status, body)
	}
	for _, bad := range []string{"groupBy=tone", "from=yesterday", "from=2026-01-01&to=2025-01-01", "groupBy=hour&from=2020-01-01", "groupBy=hour,user"} {
		if status, body := call(t, app, "GET", "/api/ops/usage?"+bad, admin, ""); status != 422 || errorCode(body) != "validation_failed" {
			t.Errorf("%s: %d %v, want 422", bad, status, body)
		}
	}

	for _, c := range []struct {
		token, body string
		status      int
	}{
		{admin, "", 202}, {admin, `{}`, 202}, {admin, `{"rebuildFrom":"2026-11-01T00:00:00Z"}`, 202},
		{admin, `{"rebuildFrom":"soon"}`, 422}, {admin, `{"from":1}`, 422}, {plain, "", 403},
	} {
		if status, body := call(t, app, "POST", "/api/ops/usage/refresh", c.token, c.body); status != c.status || status == 202 && body["jobId"] != "analytics-1" {
			t.Errorf("POST /api/ops/usage/refresh %s: %d %v, want %d", c.body, status, body, c.status)
		}
	}

	status, body = call(t, app, "GET", "/api/me/usage", plain, "")
	days, _ := body["days"].([]any)
	today, _ := body["today"].(map[string]any)
	var jobs float64
	for _, d := range days {
		jobs += d.(map[string]any)["jobs"].(float64)
	}
	if status != 200 || jobs != 24 || body["seenUntil"] == nil {
		t.Fatalf("my usage: %d %v, want user 1's 24 jobs", status, body)
	}
	// User 1's letters of today (every other hour since midnight), 1200 tokens each.
	mine := float64(0)
	for g := 0; g < 48; g += 2 {
		if now.Add(-time.Duration(g) * time.Hour).Truncate(24 * time.Hour).Equal(now.Truncate(24 * time.Hour)) {
			mine += 1200
		}
	}
	if today["tokens"] != mine || today["budget"] != 5000.0 || today["remaining"] != max(5000-mine, 0) {
		t.Errorf("today %v, want %v tokens of 5000", today, mine)
	}
	if status, body := call(t, app, "GET", "/api/me/usage?groupBy=user", plain, ""); status != 422 {
		t.Errorf("my usage by user: %d %v, want 422", status, body)
	}
}
