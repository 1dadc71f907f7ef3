package schedule_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/schedule"
	"github.com/careerops/jobs/internal/testkit"
)

// every runs three schedulers (as three worker replicas would) of one task of a throwaway
// kind, cron expr, on a database of the test's own, until the test ends. Nothing runs the
// kind's jobs: the test finishes them in SQL.
func every(t *testing.T, expr string) *pgxpool.Pool {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	k := kind.Kind{Spec: jobstore.Spec{Name: "test.tick", Table: jobstore.SharedTable("test.tick")},
		Schedules: []kind.Schedule{{Task: "test.tick", Cron: expr}}}
	tasks, err := schedule.Tasks([]kind.Kind{k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	for i := range 3 {
		s := schedule.New(schedule.Config{Pool: pool, Tasks: tasks, Owner: string(rune('a' + i)), MaxSleep: 200 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
		go func() { done <- s.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Error(err)
			}
		}
	})
	return pool
}

type slotRow struct {
	slot    time.Time
	outcome string
	jobID   string
}

func slots(t *testing.T, pool *pgxpool.Pool) []slotRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT slot, outcome, coalesce(job_id, '') FROM schedule_runs WHERE task = 'test.tick' ORDER BY slot`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []slotRow
	for rows.Next() {
		var r slotRow
		if err := rows.Scan(&r.slot, &r.outcome, &r.jobID); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, q string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Three schedulers over several slots of a task that runs every second: each slot is
// recorded once, with no gap; while its job is open the following slots are skipped (no
// overlapping runs), each naming the job that held them; once it finished the next slot
// enqueues a job again, one message each. The job runs as the system user, and List shows the
// task's next slot and its last one.
func TestThreeSchedulersRunEachSlotOnceAndNeverOverlap(t *testing.T) {
	t.Parallel()
	pool := every(t, "* * * * * *")
	testkit.Eventually(t, 10*time.Second, func() bool { return len(slots(t, pool)) >= 3 }, "three slots")
	got := slots(t, pool)
	if got[0].outcome != schedule.Enqueued || got[0].jobID != schedule.JobID("test.tick", got[0].slot) {
		t.Fatalf("first slot %+v, want its job enqueued", got[0])
	}
	for i, r := range got[1:] {
		if r.outcome != schedule.Skipped || r.jobID != got[0].jobID {
			t.Fatalf("slot %d %+v while the first job is open: want skipped, naming %s", i+1, r, got[0].jobID)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM jobs j JOIN users u ON u.id = j.user_id WHERE j.kind = 'test.tick' AND u.email = 'system@careerops.invalid'`); n != 1 {
		t.Fatalf("%d jobs of the system user, want 1", n)
	}
	// The job finishes: the next slot enqueues.
	if _, err := pool.Exec(context.Background(), `UPDATE jobs SET status = 'completed', completed_at = now() WHERE kind = 'test.tick'`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return count(t, pool, `SELECT count(*) FROM jobs WHERE kind = 'test.tick'`) == 2 },
		"a second job after the first finished")
	time.Sleep(1500 * time.Millisecond) // more slots, skipped behind the second job
	got = slots(t, pool)
	for i := 1; i < len(got); i++ {
		if gap := got[i].slot.Sub(got[i-1].slot); gap != time.Second {
			t.Fatalf("slots %s and %s are %s apart: a slot was lost", got[i-1].slot, got[i].slot, gap)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM schedule_runs WHERE outcome = 'enqueued'`); n != 2 {
		t.Fatalf("%d slots enqueued, want 2", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox_messages WHERE routing_key = 'test.tick'`); n != 2 {
		t.Fatalf("%d messages of the kind in the outbox, want 2 (one per job)", n)
	}

	list, err := schedule.List(context.Background(), pool, func(string) (jobstore.Spec, error) {
		return jobstore.Spec{Name: "test.tick", Table: jobstore.SharedTable("test.tick")}, nil
	})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	st := list[0]
	if st.Task != "test.tick" || st.Cron != "* * * * * *" || st.NextRun.IsZero() || st.LastSlot.IsZero() || st.LastBy == "" ||
		(st.LastOutcome != schedule.Skipped && st.LastOutcome != "pending") {
		t.Fatalf("List = %+v", st)
	}
}
