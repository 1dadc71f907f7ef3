package ctlcmd_test

import (
	"context"
	"strings"
	"testing"
)

// careeropsctl schedules shows each registered task: its schedule, next run, and its last
// slot with the outcome (the slot's job's status), as a table or JSON.
func TestSchedulesShowsEachTask(t *testing.T) {
	t.Parallel()
	vars, pool := database(t)
	if empty := run(t, vars, "schedules"); empty.err != nil || !strings.Contains(empty.stderr, "none registered") {
		t.Fatalf("schedules with none = %q %q %v", empty.stdout, empty.stderr, empty.err)
	}
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO schedules (task, kind, cron) VALUES ('maintenance.retention', 'maintenance.retention', '17 3 * * *');
		INSERT INTO schedule_runs (task, slot, outcome, job_id, scheduled_by)
		VALUES ('maintenance.retention', '2026-12-04T03:17:00Z', 'enqueued', 'maintenance.retention:20261204T031700Z', 'vm/1');
		INSERT INTO jobs (job_id, user_id, kind, status, args)
		SELECT 'maintenance.retention:20261204T031700Z', id, 'maintenance.retention', 'completed', '{}' FROM users WHERE email = 'system@careerops.invalid'`); err != nil {
		t.Fatal(err)
	}
	out := run(t, vars, "schedules")
	if out.err != nil || !strings.Contains(out.stdout, "17 3 * * *") || !strings.Contains(out.stdout, "2026-12-04T03:17:00Z  completed  maintenance.retention:20261204T031700Z") {
		t.Fatalf("schedules = %q, %v", out.stdout, out.err)
	}
	js := run(t, vars, "schedules", "--json")
	if js.err != nil || !strings.Contains(js.stdout, `"lastOutcome":"completed"`) || !strings.Contains(js.stdout, `"nextRun":"`) {
		t.Fatalf("schedules --json = %q, %v", js.stdout, js.err)
	}
}
