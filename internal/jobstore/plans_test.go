package jobstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

// TestStatementsOnOneJobReadOnlyThatJob: a burst of new jobs arrives faster than autovacuum
// analyzes the table, so for a while the statistics say no job is open. With them, the
// planner found a claim's row by walking the open-jobs index past every waiting job rather
// than by its id: a drain of 30,000 jobs ran at 147 jobs/s in its first quarter and 272 in
// its last (the bench's scale phase). A statement on one job must read a handful of pages,
// however many jobs wait.
func TestStatementsOnOneJobReadOnlyThatJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testkit.NewDatabaseURL(t)
	pool, plans := testkit.ExplainingPool(t, dbURL)
	store := jobstore.New(pool)
	runs := store.Runs(jobstore.CoverLetters(jobstore.Limits{}, nil))
	user, err := store.AddUser(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	const finished, waiting = 20_000, 20_000
	seed := func(status string, from, to int) {
		if _, err := pool.Exec(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, tone, created_at, updated_at)
			SELECT 'job-' || g, $1, $2, 'Engineer', 'CV', 'concise', now(), now() FROM generate_series($3::int, $4::int) g`,
			user, status, from, to); err != nil {
			t.Fatal(err)
		}
	}
	seed("completed", 1, finished)
	if _, err := pool.Exec(ctx, `ANALYZE cover_letter_jobs`); err != nil {
		t.Fatal(err)
	}
	seed("pending", finished+1, finished+waiting) // the burst the statistics do not know of
	batched := runUntilCleanup(t, jobstore.NewBatched(runs, 64, 1))
	claimOf := func(n int) jobstore.ClaimRequest {
		return jobstore.ClaimRequest{Envelope: job.Envelope{JobID: fmt.Sprintf("job-%d", n), UserID: user}, LeaseFor: time.Minute,
			Args: []byte(`{"jobDescription":"Engineer","cvText":"CV","tone":"concise"}`)}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"claim", func() error { _, _, err := runs.Claim(ctx, claimOf(finished+10)); return err }},
		{"batched claim", func() error { _, _, err := batched.Claim(ctx, claimOf(finished+20)); return err }},
		{"cancel", func() error { _, err := store.Cancel(ctx, user, fmt.Sprintf("job-%d", finished+30), nil); return err }},
	}
	for _, s := range steps {
		plans.Take()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, p := range plans.Take() {
			if pages := testkit.PagesRead(p); pages > 100 {
				t.Errorf("%s read %d pages with %d jobs waiting:\n%s", s.name, pages, waiting, p)
			} else if strings.Contains(p, "cover_letter_jobs") {
				t.Logf("%s: %d pages", s.name, pages)
			}
		}
	}
}
