package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

// Removed is the outcome of a slot whose job is gone (deleted by retention).
const Removed = "removed"

// Status is a task as the workers last registered it and as it last ran.
type Status struct {
	Task, Kind, Cron string
	// NextRun is the task's next slot after now (zero: none).
	NextRun time.Time
	// LastSlot is the latest slot recorded (zero: none yet), recorded at LastRecorded by
	// LastBy; LastOutcome is Skipped, or the status of its job (LastJobID), or Removed.
	LastSlot, LastRecorded time.Time
	LastOutcome            string
	LastJobID              string
	LastBy                 string
}

// List returns every registered task's status, by task name. spec says how the store keeps a
// kind (kinds.StoreSpec); a kind it does not know shows its last job's status as "".
func List(ctx context.Context, pool *pgxpool.Pool, spec func(kind string) (jobstore.Spec, error)) ([]Status, error) {
	rows, err := pool.Query(ctx, `
		SELECT s.task, s.kind, s.cron, now(), r.slot, r.created_at, coalesce(r.outcome, ''), coalesce(r.job_id, ''), coalesce(r.scheduled_by, '')
		FROM schedules s
		LEFT JOIN LATERAL (SELECT * FROM schedule_runs WHERE task = s.task ORDER BY slot DESC LIMIT 1) r ON true
		ORDER BY s.task`)
	if err != nil {
		return nil, fmt.Errorf("schedule: list: %w", err)
	}
	var (
		out []Status
		now []time.Time
	)
	for rows.Next() {
		var (
			st             Status
			at             time.Time
			slot, recorded *time.Time
		)
		if err := rows.Scan(&st.Task, &st.Kind, &st.Cron, &at, &slot, &recorded, &st.LastOutcome, &st.LastJobID, &st.LastBy); err != nil {
			rows.Close()
			return nil, fmt.Errorf("schedule: list: %w", err)
		}
		st.LastSlot, st.LastRecorded = deref(slot), deref(recorded)
		out, now = append(out, st), append(now, at)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schedule: list: %w", err)
	}
	for i := range out {
		if when, err := Parse(out[i].Cron); err == nil {
			out[i].NextRun = when.Next(now[i])
		}
		if out[i].LastOutcome != Enqueued {
			continue
		}
		if out[i].LastOutcome, err = lastJobStatus(ctx, pool, spec, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lastJobStatus is the status of st's last job, Removed if it is gone.
func lastJobStatus(ctx context.Context, pool *pgxpool.Pool, spec func(kind string) (jobstore.Spec, error), st Status) (string, error) {
	k, err := spec(st.Kind)
	if err != nil {
		return "", nil //nolint:nilerr // a kind this program does not know: its status is unknown, not an error
	}
	var status string
	err = pool.QueryRow(ctx, `SELECT status FROM `+pgx.Identifier{k.Table.Name}.Sanitize()+` WHERE job_id = $1`, st.LastJobID).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Removed, nil
	case err != nil:
		return "", fmt.Errorf("schedule: status of %s: %w", st.LastJobID, err)
	}
	return status, nil
}

// View is st as the ops overview and careeropsctl schedules --json show it.
func (st Status) View() job.ScheduleView {
	v := job.ScheduleView{Task: st.Task, Kind: st.Kind, Cron: st.Cron, LastOutcome: st.LastOutcome, LastJobID: st.LastJobID}
	if !st.NextRun.IsZero() {
		next := st.NextRun.UTC()
		v.NextRun = &next
	}
	if !st.LastSlot.IsZero() {
		last := st.LastSlot.UTC()
		v.LastRun = &last
	}
	return v
}

// Prune deletes the slots recorded more than days days ago, but each task's latest (its last
// run, on /ops), and returns how many it deleted.
func Prune(ctx context.Context, pool *pgxpool.Pool, days int) (int64, error) {
	tag, err := pool.Exec(ctx, `
		DELETE FROM schedule_runs r
		WHERE r.slot < now() - make_interval(days => $1)
		  AND r.slot < (SELECT max(slot) FROM schedule_runs l WHERE l.task = r.task)`, days)
	if err != nil {
		return 0, fmt.Errorf("schedule: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}
