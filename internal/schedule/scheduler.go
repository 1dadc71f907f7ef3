package schedule

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Config.
const (
	// DefaultMaxSleep bounds a scheduler's sleep between looks: a changed clock or a task
	// registered by a newer replica is seen within it.
	DefaultMaxSleep = 30 * time.Second
	// retryDelay is the wait after a failed look (the database is away, say).
	retryDelay = 2 * time.Second
)

// Config configures a Scheduler.
type Config struct {
	// Pool is the database of the tasks' rows and jobs.
	Pool *pgxpool.Pool
	// Tasks are what the scheduler runs (see Tasks).
	Tasks []Task
	// Owner names this process in schedule_runs (host/pid, say).
	Owner string
	// MaxSleep bounds the sleep between looks. Defaults to DefaultMaxSleep.
	MaxSleep time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Scheduler runs tasks: every worker process runs one, and each slot runs once among them.
type Scheduler struct {
	cfg Config
	log *slog.Logger
}

// New returns a Scheduler of cfg.
func New(cfg Config) *Scheduler {
	cfg.MaxSleep = cmp.Or(cfg.MaxSleep, DefaultMaxSleep)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger}
}

// Run runs the tasks' slots until ctx ends: it registers the tasks, then looks at each when
// its next slot is due (by PostgreSQL's clock), records the slot and enqueues its job unless
// another replica did. A task that never ran counts its slots from the first look: a new
// task does not run the slots before it was deployed.
func (s *Scheduler) Run(ctx context.Context) error {
	var (
		since time.Time
		user  int64
	)
	for {
		var err error
		if since, err = register(ctx, s.cfg.Pool, s.cfg.Tasks); err == nil {
			user, err = SystemUser(ctx, s.cfg.Pool)
		}
		if err == nil {
			break
		}
		if !s.pause(ctx, err, retryDelay) {
			return nil
		}
	}
	s.log.InfoContext(ctx, "schedule: running tasks", slog.Int("tasks", len(s.cfg.Tasks)))
	for {
		wait := s.look(ctx, since, user)
		if !s.pause(ctx, nil, wait) {
			return nil
		}
	}
}

// look runs every task's due slot and returns how long to sleep until the next one is due.
func (s *Scheduler) look(ctx context.Context, since time.Time, user int64) time.Duration {
	wait := s.cfg.MaxSleep
	for _, t := range s.cfg.Tasks {
		if !t.On() {
			continue
		}
		d, untilNext, err := tick(ctx, s.cfg.Pool, t, since, user, s.cfg.Owner)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "schedule: look at a task", slog.String("task", t.Task), slog.String("error", err.Error()))
			}
			wait = min(wait, retryDelay)
			continue
		}
		if d.Outcome != "" {
			s.log.InfoContext(ctx, "schedule: slot "+d.Outcome, slog.String("task", t.Task), slog.Time("slot", d.Slot),
				slog.String("job_id", JobID(t.Task, d.Slot)))
		}
		// A little past the slot, so that it is due by PostgreSQL's clock when looked at.
		wait = min(wait, untilNext+5*time.Millisecond)
	}
	return max(wait, 10*time.Millisecond)
}

// pause logs err (if any) and sleeps d; false if ctx ended.
func (s *Scheduler) pause(ctx context.Context, err error, d time.Duration) bool {
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		s.log.WarnContext(ctx, "schedule: not started yet", slog.String("error", err.Error()))
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
