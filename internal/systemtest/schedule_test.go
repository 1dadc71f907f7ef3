package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// workerBuild is the worker without the race detector: three of them start and stop twice.
var workerBuild build

// scheduledRun is a row of schedule_runs of maintenance.retention.
type scheduledRun struct {
	slot, recorded time.Time
	outcome, jobID string
	by             string
}

// TestSchedulerUnderThreeWorkerProcesses runs three real worker processes whose scheduler
// runs maintenance.retention every two seconds, stops all three across several slots, and
// starts them again: every slot while they run is recorded once and its job runs once;
// of the slots missed while all were down only the latest runs, once, at the restart.
func TestSchedulerUnderThreeWorkerProcesses(t *testing.T) {
	t.Parallel()
	bin := workerBuild.get(t, "careerops-bin-worker-", nil, "../../cmd/worker")
	pool, dbURL := testkit.NewPool(t)
	amqpURL := testkit.NewVhostURL(t)
	logs := t.TempDir()
	start := func(round int) []*testkit.Proc {
		var procs []*testkit.Proc
		for i := range 3 {
			admin := freeAddr(t)
			p, err := testkit.StartProc(testkit.ProcSpec{
				Name: fmt.Sprintf("worker-%d", i), Path: filepath.Join(bin, "worker"),
				Env: programEnv(dbURL, amqpURL, freeAddr(t), freeAddr(t), admin,
					"WORKER_SCHEDULES=maintenance.retention=*/2 * * * * *", "RETENTION_DAYS=0", "LOG_LEVEL=info"),
				Log: filepath.Join(logs, fmt.Sprintf("worker-%d.log", i)),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.KillGroup)
			procs = append(procs, p)
			if _, err := p.WaitReady(context.Background(), "http://"+admin+"/readyz", 30*time.Second, 50*time.Millisecond); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		return procs
	}
	stop := func(procs []*testkit.Proc) {
		for _, p := range procs {
			if err := p.StopCleanly(30 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}

	procs := start(1)
	testkit.Eventually(t, 30*time.Second, func() bool { return len(scheduledRuns(t, pool)) >= 4 }, "four slots")
	stop(procs)
	before := scheduledRuns(t, pool)
	last := before[len(before)-1].slot
	// Down across at least three slots; back just after a slot (by PostgreSQL's clock), so
	// that the slot missed last is still the latest when the workers first look.
	restart := waitForDBTime(t, pool, last.Add(6*time.Second))
	procs = start(2)
	// The slots missed are those up to the schedulers' first look after the restart: on a
	// loaded machine that may come a slot or more after the restart.
	var look time.Time
	testkit.Eventually(t, 30*time.Second, func() bool {
		look = firstLook(t, logs, restart)
		return !look.IsZero()
	}, "a scheduler's first look after the restart")
	testkit.Eventually(t, 30*time.Second, func() bool {
		runs := scheduledRuns(t, pool)
		return runs[len(runs)-1].slot.After(look.Add(5 * time.Second))
	}, "three slots after the first look")
	stop(procs)
	all := scheduledRuns(t, pool)

	var caughtUp []scheduledRun
	for _, r := range all {
		if r.slot.After(last) && !r.slot.After(look) {
			caughtUp = append(caughtUp, r)
		}
	}
	missed := int(look.Truncate(2*time.Second).Sub(last) / (2 * time.Second))
	if len(caughtUp) != 1 || missed < 3 {
		t.Fatalf("%d slots missed while all were down (%s to the first look at %s, %s after the restart); %d ran: %+v, want exactly the latest",
			missed, last, look, look.Sub(restart).Round(time.Millisecond), len(caughtUp), caughtUp)
	}
	after := all[len(before):]
	checkContiguous(t, before)
	checkContiguous(t, after)
	for _, r := range all {
		if r.outcome != "enqueued" {
			continue
		}
		var status string
		var attempts int
		if err := pool.QueryRow(context.Background(), `SELECT status, attempts FROM jobs WHERE job_id = $1`, r.jobID).Scan(&status, &attempts); err != nil ||
			status != string(job.StatusCompleted) || attempts != 1 {
			t.Fatalf("slot %s: job %s is %s after %d attempts (%v), want completed once", r.slot, r.jobID, status, attempts, err)
		}
	}
	var jobs int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE kind = $1`, job.KindRetention).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	enqueued := 0
	for _, r := range all {
		if r.outcome == "enqueued" {
			enqueued++
		}
	}
	if jobs != enqueued {
		t.Fatalf("%d jobs for %d enqueued slots", jobs, enqueued)
	}
	t.Logf("slots: %d before the stop; %d fell while all were down: 1 caught up %s after its slot, %d not run; %d after; %d jobs, %d enqueued, %d skipped; slots won by %v",
		len(before), missed, caughtUp[0].recorded.Sub(caughtUp[0].slot).Round(time.Millisecond), missed-1, len(after)-1, jobs, enqueued, len(all)-enqueued, winners(all))
}

// scheduledRuns are the recorded slots of maintenance.retention, in order.
func scheduledRuns(t *testing.T, pool *pgxpool.Pool) []scheduledRun {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT slot, created_at, outcome, coalesce(job_id, ''), scheduled_by
		FROM schedule_runs WHERE task = $1 ORDER BY slot`, job.KindRetention)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []scheduledRun
	for rows.Next() {
		var r scheduledRun
		if err := rows.Scan(&r.slot, &r.recorded, &r.outcome, &r.jobID, &r.by); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkContiguous fails t if runs skip a slot of every two seconds.
func checkContiguous(t *testing.T, runs []scheduledRun) {
	t.Helper()
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].slot.Sub(runs[i-1].slot); gap != 2*time.Second {
			t.Fatalf("slots %s and %s are %s apart while the workers ran", runs[i-1].slot, runs[i].slot, gap)
		}
	}
}

// winners counts the slots each worker process recorded.
func winners(runs []scheduledRun) map[string]int {
	by := map[string]int{}
	for _, r := range runs {
		by[r.by]++
	}
	return by
}

// firstLook is when the first worker whose log is in dir started looking at its schedules
// after since ("schedule: running tasks", by its log's clock, which is PostgreSQL's host's);
// zero if none has yet. The look follows that line at once.
func firstLook(t *testing.T, dir string, since time.Time) time.Time {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "worker-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			var l struct {
				Time time.Time `json:"time"`
				Msg  string    `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "schedule: running tasks" || !l.Time.After(since) {
				continue
			}
			if first.IsZero() || l.Time.Before(first) {
				first = l.Time
			}
		}
	}
	return first
}

// waitForDBTime waits until PostgreSQL's clock is past notBefore and 50 to 400 ms after an
// even second, and returns that time.
func waitForDBTime(t *testing.T, pool *pgxpool.Pool, notBefore time.Time) time.Time {
	t.Helper()
	var now time.Time
	testkit.Eventually(t, 30*time.Second, func() bool {
		if err := pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		into := now.Sub(now.Truncate(2 * time.Second))
		return now.After(notBefore) && into >= 50*time.Millisecond && into <= 400*time.Millisecond
	}, "PostgreSQL's clock just past an even second")
	return now
}
