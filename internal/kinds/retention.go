package kinds

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/schedule"
)

// Defaults of RetentionDeps.
const (
	// DefaultRetentionBatch is how many rows one transaction deletes: short enough that no
	// lock is held for long (a few milliseconds a batch on a million-row table, see
	// docs/benchmarks.md).
	DefaultRetentionBatch = 1000
	// DefaultRetentionBudget bounds one run; what is left waits for the next slot.
	DefaultRetentionBudget = 10 * time.Minute
	// retentionCron is when retention runs by default: daily at 03:17 UTC.
	retentionCron = "17 3 * * *"
)

// RetentionDeps are what retention needs.
type RetentionDeps struct {
	// Store deletes the rows.
	Store *jobstore.Store
	// Days keeps finished jobs for this many days after they completed (RETENTION_DAYS); 0
	// keeps everything.
	Days int
	// Batch is the rows one transaction deletes. Defaults to DefaultRetentionBatch.
	Batch int
	// Budget bounds one run. Defaults to DefaultRetentionBudget.
	Budget time.Duration
}

// RetentionArgs are a retention job's arguments: none, the worker's settings decide.
type RetentionArgs struct{}

// RetentionResult is what a retention run did.
type RetentionResult struct {
	Days    int              `json:"days"`    // 0: retention is off, nothing was deleted
	Deleted map[string]int64 `json:"deleted"` // rows deleted, by table
	Batches int              `json:"batches"`
	// More says the run stopped at its budget with rows left for the next slot.
	More bool `json:"more,omitempty"`
}

// Retention is maintenance.retention: finished jobs older than RETENTION_DAYS are deleted in
// small batches (and the scheduler's slots as old, but each task's last), daily (the task maintenance.retention), by whichever worker runs the kind.
func Retention(d RetentionDeps) kind.Kind {
	d.Batch, d.Budget = cmp.Or(d.Batch, DefaultRetentionBatch), cmp.Or(d.Budget, DefaultRetentionBudget)
	k := kind.Kind{
		Spec:        jobstore.Spec{Name: job.KindRetention},
		Timeout:     d.Budget + time.Minute,
		Concurrency: 1,
		Retry:       kind.Retry{MaxAttempts: 3, BaseDelay: time.Minute, MaxDelay: 10 * time.Minute},
		Schedules:   []kind.Schedule{{Task: job.KindRetention, Cron: retentionCron}},
	}
	return kind.Define(k, func(ctx context.Context, _ jobstore.Run, _ RetentionArgs) (RetentionResult, error) {
		return retain(ctx, d)
	})
}

// retain deletes d's batches, table by table, until none is left or the budget is spent.
func retain(ctx context.Context, d RetentionDeps) (RetentionResult, error) {
	res := RetentionResult{Days: d.Days, Deleted: map[string]int64{}}
	if d.Days <= 0 {
		return res, nil
	}
	if d.Store == nil {
		return res, errors.New("retention: no store")
	}
	deadline := time.Now().Add(d.Budget)
	for _, table := range jobstore.RetentionTables() {
		for {
			if time.Now().After(deadline) {
				res.More = true
				return res, nil
			}
			n, err := d.Store.DeleteFinished(ctx, table, d.Days, d.Batch)
			if err != nil {
				return res, err
			}
			res.Batches++
			res.Deleted[table] += n
			if n < int64(d.Batch) {
				break
			}
		}
	}
	// The scheduler's own record of slots, as old, but each task's last.
	n, err := schedule.Prune(ctx, d.Store.Pool(), d.Days)
	res.Deleted["schedule_runs"] = n
	return res, err
}
