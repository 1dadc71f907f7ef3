package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// decide runs the latest due slot once (not every missed one), skips it while the previous
// job is open, and runs nothing before the first slot after a new task was first seen.
func TestDecide(t *testing.T) {
	t.Parallel()
	daily, _ := Parse("17 3 * * *")
	everySecond, _ := Parse("* * * * * *")
	everyTwo, _ := Parse("*/2 * * * * *")
	monthly, _ := Parse("@monthly")
	var zero time.Time
	tests := []struct {
		name        string
		when        cron.Schedule
		last, since time.Time
		now         time.Time
		open        bool
		want        Decision
		wantNoSlot  bool
	}{
		{name: "daily, due", when: daily, last: at("2026-12-03T03:17:00Z"), now: at("2026-12-04T03:17:00.2Z"),
			want: Decision{Slot: at("2026-12-04T03:17:00Z"), Outcome: Enqueued}},
		{name: "daily, not yet", when: daily, last: at("2026-12-04T03:17:00Z"), now: at("2026-12-04T23:00:00Z"), wantNoSlot: true},
		{name: "daily, three days down: the latest slot once", when: daily, last: at("2026-12-01T03:17:00Z"), now: at("2026-12-04T10:00:00Z"),
			want: Decision{Slot: at("2026-12-04T03:17:00Z"), Outcome: Enqueued}},
		{name: "every second, a week down", when: everySecond, last: at("2026-11-27T10:00:00Z"), now: at("2026-12-04T10:00:00.5Z"),
			want: Decision{Slot: at("2026-12-04T10:00:00Z"), Outcome: Enqueued}},
		{name: "every two seconds, just past one", when: everyTwo, last: at("2026-12-04T10:00:00Z"), now: at("2026-12-04T10:00:05.9Z"),
			want: Decision{Slot: at("2026-12-04T10:00:04Z"), Outcome: Enqueued}},
		{name: "the previous job is open: skipped", when: everyTwo, last: at("2026-12-04T10:00:00Z"), now: at("2026-12-04T10:00:02Z"), open: true,
			want: Decision{Slot: at("2026-12-04T10:00:02Z"), Outcome: Skipped}},
		{name: "a new task: no slot before it was first seen", when: daily, last: zero, since: at("2026-12-04T10:00:00Z"), now: at("2026-12-04T10:00:01Z"), wantNoSlot: true},
		{name: "a new task: its first slot after", when: daily, last: zero, since: at("2026-12-04T03:00:00Z"), now: at("2026-12-04T03:18:00Z"),
			want: Decision{Slot: at("2026-12-04T03:17:00Z"), Outcome: Enqueued}},
		{name: "monthly, two months down", when: monthly, last: at("2026-09-01T00:00:00Z"), now: at("2026-11-15T00:00:00Z"),
			want: Decision{Slot: at("2026-11-01T00:00:00Z"), Outcome: Enqueued}},
		{name: "exactly at the slot", when: everyTwo, last: at("2026-12-04T10:00:00Z"), now: at("2026-12-04T10:00:02Z"),
			want: Decision{Slot: at("2026-12-04T10:00:02Z"), Outcome: Enqueued}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decide(tt.when, tt.last, tt.since, tt.now, tt.open)
			if tt.wantNoSlot {
				if !errors.Is(err, errNoSlot) {
					t.Fatalf("decide = %+v, %v; want no slot", got, err)
				}
				return
			}
			if err != nil || !got.Slot.Equal(tt.want.Slot) || got.Outcome != tt.want.Outcome {
				t.Fatalf("decide = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// Tasks come from the kinds' declarations, with the operator's overrides: another time, off,
// and refusals for an unknown task, a bad expression, a duplicate or a bad name.
func TestTasks(t *testing.T) {
	t.Parallel()
	k := func(name string, s ...kind.Schedule) kind.Kind {
		return kind.Kind{Spec: jobstore.Spec{Name: name}, Schedules: s}
	}
	all := []kind.Kind{k("a.one", kind.Schedule{Task: "a.one", Cron: "@daily"}), k("b.two", kind.Schedule{Task: "b.two", Cron: "0 * * * *"}), k("c.none")}
	tests := []struct {
		name      string
		kinds     []kind.Kind
		overrides map[string]string
		want      string // task=cron, comma-separated
		wantErr   string
	}{
		{name: "declared", kinds: all, want: "a.one=@daily,b.two=0 * * * *"},
		{name: "overridden and off", kinds: all, overrides: map[string]string{"a.one": " */5 * * * * * ", "b.two": "off"}, want: "a.one=*/5 * * * * *,b.two=off"},
		{name: "unknown task", kinds: all, overrides: map[string]string{"z.zz": "@daily"}, wantErr: "z.zz"},
		{name: "bad cron", kinds: all, overrides: map[string]string{"a.one": "sometimes"}, wantErr: "sometimes"},
		{name: "twice", kinds: []kind.Kind{k("a.one", kind.Schedule{Task: "x.y", Cron: "@daily"}), k("b.two", kind.Schedule{Task: "x.y", Cron: "@daily"})}, wantErr: "twice"},
		{name: "bad name", kinds: []kind.Kind{k("a.one", kind.Schedule{Task: "Nope/1", Cron: "@daily"})}, wantErr: "task name"},
		{name: "too long", kinds: []kind.Kind{k("a.one", kind.Schedule{Task: "a." + strings.Repeat("x", 40), Cron: "@daily"})}, wantErr: "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Tasks(tt.kinds, tt.overrides)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Tasks = %v, want an error naming %q", err, tt.wantErr)
				}
				return
			}
			var names []string
			for _, task := range got {
				names = append(names, task.Task+"="+task.Cron)
				if string(task.Args) != "{}" || task.Kind.Name == "" {
					t.Fatalf("task %+v: args or kind missing", task)
				}
			}
			if strings.Join(names, ",") != tt.want || err != nil {
				t.Fatalf("Tasks = %v, %v; want %s", names, err, tt.want)
			}
		})
	}
}

// A job id of a slot is a valid job id, the same in any time zone.
func TestJobID(t *testing.T) {
	t.Parallel()
	slot := at("2026-12-04T03:17:00Z")
	id := JobID("maintenance.retention", slot.In(time.FixedZone("x", 3600)))
	if id != "maintenance.retention:20261204T031700Z" {
		t.Fatalf("JobID = %s", id)
	}
}
