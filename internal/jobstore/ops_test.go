package jobstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

// opsInsertJob writes a job row of user in status, last updated at updatedAt, in SQL.
func opsInsertJob(t *testing.T, pool *pgxpool.Pool, user int64, id string, status job.Status, updatedAt time.Time) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, error_message, traceparent, updated_at)
		VALUES ($1, $2, $3, 'Engineer', 'CV', $4, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', $5)`,
		id, user, status, "error of "+id, updatedAt); err != nil {
		t.Fatalf("insert job %s: %v", id, err)
	}
}

func TestCountByStatus(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()

	all, err := s.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := all.Counts
	want := map[job.Status]int{job.StatusPending: 0, job.StatusProcessing: 0, job.StatusCompleted: 0, job.StatusFailed: 0, job.StatusCancelled: 0}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("empty store: counts = %v, want %v", counts, want)
	}

	user := addUser(t, s, "ada@example.com")
	now := time.Now()
	for i, st := range []job.Status{job.StatusPending, job.StatusFailed, job.StatusFailed, job.StatusCompleted, job.StatusFailed} {
		opsInsertJob(t, pool, user, fmt.Sprintf("job-%d", i), st, now)
	}
	if all, err = s.CountByStatus(ctx); err != nil || all.Estimated != nil {
		t.Fatal(err, all.Estimated)
	}
	counts = all.Counts
	want[job.StatusPending], want[job.StatusFailed], want[job.StatusCompleted] = 1, 3, 1
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("counts = %v, want %v", counts, want)
	}
}

// On a large table, open and failed jobs are still counted; completed and cancelled ones are
// estimated from the statistics, close to the truth, and said to be.
func TestCountByStatusOnALargeTable(t *testing.T) {
	all := countsOfALargeTable(t, `CASE WHEN g % 10 = 0 THEN 'cancelled' WHEN g % 1000 = 1 THEN 'failed'
		WHEN g % 1000 = 2 THEN 'pending' WHEN g % 1000 = 3 THEN 'processing' ELSE 'completed' END`)
	c := all.Counts
	if c[job.StatusPending] != 40 || c[job.StatusProcessing] != 40 || c[job.StatusFailed] != 40 {
		t.Fatalf("open and failed jobs are not counted exactly: %v", c)
	}
	if !near(c[job.StatusCompleted], 35880) || !near(c[job.StatusCancelled], 4000) || fmt.Sprint(all.Estimated) != "[completed cancelled]" {
		t.Fatalf("estimates %v (estimated %v), want about 35880 completed and 4000 cancelled", c, all.Estimated)
	}
}

// Past the cap of exact counting, failed (or open) jobs are estimated too, and said to be:
// thousands of failures do not slow the ops page.
func TestCountByStatusPastTheCap(t *testing.T) {
	all := countsOfALargeTable(t, `CASE WHEN g % 5 = 1 THEN 'failed' WHEN g % 1000 = 2 THEN 'pending' ELSE 'completed' END`)
	c := all.Counts
	if c[job.StatusPending] != 40 || !near(c[job.StatusFailed], 8000) || fmt.Sprint(all.Estimated) != "[completed failed cancelled]" {
		t.Fatalf("counts %v (estimated %v), want 40 pending counted and about 8000 failed estimated", c, all.Estimated)
	}
}

// countsOfALargeTable is CountByStatus over 40,000 analyzed jobs g = 1…40000 whose status is
// the SQL expression status of g.
func countsOfALargeTable(t *testing.T, status string) jobstore.StatusCounts {
	t.Helper()
	s, pool := newStore(t)
	ctx := context.Background()
	user := addUser(t, s, "ada@example.com")
	if _, err := pool.Exec(ctx, `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text)
		SELECT 'j' || g, $1, `+status+`, 'x', 'y' FROM generate_series(1, 40000) g`, user); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE cover_letter_jobs`); err != nil {
		t.Fatal(err)
	}
	all, err := s.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// near is within 10 % of want.
func near(got, want int) bool { return got > want*9/10 && got < want*11/10 }

func TestRecentFailures(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	ada := addUser(t, s, "ada@example.com")
	grace := addUser(t, s, "grace@example.com")

	if jobs, err := s.RecentFailures(ctx, 20); err != nil || len(jobs) != 0 {
		t.Fatalf("no failures: RecentFailures = %v, %v", jobs, err)
	}

	base := time.Now().Add(-time.Hour)
	opsInsertJob(t, pool, ada, "failed-old", job.StatusFailed, base)
	opsInsertJob(t, pool, grace, "failed-new", job.StatusFailed, base.Add(2*time.Minute))
	opsInsertJob(t, pool, ada, "failed-mid", job.StatusFailed, base.Add(time.Minute))
	opsInsertJob(t, pool, ada, "completed", job.StatusCompleted, base.Add(3*time.Minute))
	opsInsertJob(t, pool, grace, "cancelled", job.StatusCancelled, base.Add(3*time.Minute))

	jobs, err := s.RecentFailures(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != "failed-new" || jobs[1].ID != "failed-mid" {
		t.Fatalf("RecentFailures(2) = %v, want failed-new, failed-mid", ids(jobs))
	}
	j := jobs[0]
	if j.UserID != grace || j.Error != "error of failed-new" || j.TraceParent == "" ||
		!j.UpdatedAt.Equal(base.Add(2*time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("failed-new = %+v", j)
	}
	if jobs, err = s.RecentFailures(ctx, 20); err != nil || len(jobs) != 3 || jobs[2].ID != "failed-old" {
		t.Fatalf("RecentFailures(20) = %v, %v; want the 3 failed jobs", ids(jobs), err)
	}
}

func ids(jobs []jobstore.Failure) []string {
	out := make([]string, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

func TestFindOrAddUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CreatesOnceThenFinds", func(t *testing.T) {
		s, _ := newStore(t)
		id, err := s.FindOrAddUser(ctx, "dev@example.com")
		if err != nil || id <= 0 {
			t.Fatalf("FindOrAddUser = %d, %v", id, err)
		}
		again, err := s.FindOrAddUser(ctx, "dev@example.com")
		if err != nil || again != id {
			t.Fatalf("second FindOrAddUser = %d, %v; want %d", again, err, id)
		}
		other, err := s.FindOrAddUser(ctx, "other@example.com")
		if err != nil || other == id {
			t.Fatalf("another email = %d, %v; want a new user", other, err)
		}
		added := addUser(t, s, "ada@example.com")
		if found, err := s.FindOrAddUser(ctx, "ada@example.com"); err != nil || found != added {
			t.Fatalf("a user made by AddUser: FindOrAddUser = %d, %v; want %d", found, err, added)
		}
	})

	t.Run("ConcurrentCallsAgreeOnOneUser", func(t *testing.T) {
		s, pool := newStore(t)
		const n = 16
		got := make([]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = s.FindOrAddUser(ctx, "race@example.com") })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("call %d = %d, %v; call 0 = %d", i, got[i], errs[i], got[0])
			}
		}
		var users int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = 'race@example.com'`).Scan(&users); err != nil || users != 1 {
			t.Fatalf("%d users with the email, %v", users, err)
		}
	})

	t.Run("SkipsIDsTakenOutsideTheSequence", func(t *testing.T) {
		s, pool := newStore(t)
		// A user first seen in another service's message, with the id the sequence hands out next.
		if _, err := pool.Exec(ctx, `INSERT INTO users (id) VALUES (1), (2)`); err != nil {
			t.Fatal(err)
		}
		id, err := s.FindOrAddUser(ctx, "dev@example.com")
		if err != nil || id <= 2 {
			t.Fatalf("FindOrAddUser = %d, %v; want a free id", id, err)
		}
	})
}
