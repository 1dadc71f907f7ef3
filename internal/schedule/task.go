// Package schedule runs the kinds' periodic work (kind.Schedule): every worker process runs a
// Scheduler over the same tasks, and each slot of a task runs once across all of them. A row
// per task and slot (schedule_runs, primary key (task, slot)) decides: the process whose
// INSERT wins enqueues the slot's job, with the deterministic id "<task>:<slot>", in the same
// transaction. After downtime the latest missed slot runs once (not every missed slot); a
// slot whose previous job has not finished is recorded as skipped, so runs never overlap.
// The clock is PostgreSQL's now(), the same for every replica.
package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

// Off, as a task's cron in an override, turns the task off.
const Off = "off"

// maxTaskName bounds a task's name: its jobs' ids ("<task>:<slot>") stay within job.ValidID.
const maxTaskName = 40

// Task is one schedule of a kind, ready to run.
type Task struct {
	kind.Schedule
	// Kind is how the store keeps the kind whose jobs the task enqueues.
	Kind jobstore.Spec
	when cron.Schedule // nil: off
}

// On reports whether the task runs (it is not Off).
func (t Task) On() bool { return t.when != nil }

// Parse reads a cron expression: 5 fields (minute first), 6 (seconds first), or a descriptor
// such as @daily or @every 1h.
func Parse(expr string) (cron.Schedule, error) {
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	s, err := p.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule: cron %q: %w", expr, err)
	}
	return s, nil
}

// Tasks are the schedules the kinds declare, with overrides (task → cron expression, or Off:
// the task is kept, to show it is off, but never runs) applied: an override of a task no kind declares is an error, and so is a cron expression
// that does not parse or a task name that cannot prefix a job id.
func Tasks(kinds []kind.Kind, overrides map[string]string) ([]Task, error) {
	var tasks []Task
	seen := map[string]bool{}
	for _, k := range kinds {
		for _, s := range k.Schedules {
			if !job.ValidKind(s.Task) || len(s.Task) > maxTaskName {
				return nil, fmt.Errorf("schedule: task name %q: dot-separated lower case words, at most %d characters", s.Task, maxTaskName)
			}
			if seen[s.Task] {
				return nil, fmt.Errorf("schedule: task %q declared twice", s.Task)
			}
			seen[s.Task] = true
			if o, ok := overrides[s.Task]; ok {
				s.Cron = strings.TrimSpace(o)
			}
			if len(s.Args) == 0 {
				s.Args = json.RawMessage(`{}`)
			}
			if s.Cron == Off { // registered as off, for /ops, and never run
				tasks = append(tasks, Task{Schedule: s, Kind: k.Spec})
				continue
			}
			when, err := Parse(s.Cron)
			if err != nil {
				return nil, fmt.Errorf("task %s: %w", s.Task, err)
			}
			tasks = append(tasks, Task{Schedule: s, Kind: k.Spec, when: when})
		}
	}
	var unknown []string
	for name := range overrides {
		if !seen[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("schedule: no kind declares the tasks %v", unknown)
	}
	return tasks, nil
}

// JobID is the id of the job of task's slot.
func JobID(task string, slot time.Time) string {
	return task + ":" + slot.UTC().Format("20060102T150405Z")
}

// Outcomes of a slot.
const (
	Enqueued = "enqueued" // the slot's job was enqueued
	Skipped  = "skipped"  // the previous job had not finished: no job for this slot
)

// errNoSlot: no slot is due.
var errNoSlot = errors.New("schedule: no slot due")

// latestSlot is the latest slot of s in (after, now]: after downtime only the latest missed
// slot runs. errNoSlot if there is none.
func latestSlot(s cron.Schedule, after, now time.Time) (time.Time, error) {
	// Slots are found by stepping forward from the start of a window back from now: the
	// narrowest window that holds one bounds the steps (a cron of every second after a week
	// down takes 60, not 604,800).
	const day = 24 * time.Hour
	for _, w := range []time.Duration{time.Minute, time.Hour, day, 32 * day, 367 * day, 5 * 367 * day} {
		from := now.Add(-w)
		if from.Before(after) {
			from = after
		}
		slot := s.Next(from)
		if slot.IsZero() || slot.After(now) {
			if !from.After(after) {
				return time.Time{}, errNoSlot // the window reached after: nothing in (after, now]
			}
			continue
		}
		for next := s.Next(slot); !next.IsZero() && !next.After(now); next = s.Next(next) {
			slot = next
		}
		return slot, nil
	}
	return time.Time{}, errNoSlot
}

// Decision is what a scheduler does at a slot.
type Decision struct {
	Slot    time.Time
	Outcome string // Enqueued or Skipped
}

// decide says what to do at now for a task run on s whose last recorded slot is last (zero:
// none, then the slots after since count, when this scheduler first looked), and whose
// previous job is still open (pending or processing). errNoSlot if no slot is due.
func decide(s cron.Schedule, last, since, now time.Time, previousOpen bool) (Decision, error) {
	after := last
	if after.IsZero() {
		after = since
	}
	slot, err := latestSlot(s, after, now)
	if err != nil {
		return Decision{}, err
	}
	if previousOpen {
		return Decision{Slot: slot, Outcome: Skipped}, nil
	}
	return Decision{Slot: slot, Outcome: Enqueued}, nil
}
