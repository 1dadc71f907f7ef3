package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/tools/riverpeer"
)

// jobsDB is a database a system under test keeps its jobs in, seen through the bench's own
// pool on it: ours (cover_letter_jobs) or the River peer's (river_job).
type jobsDB struct {
	pool   *pgxpool.Pool
	finals string // two counts: the completed jobs, the jobs final without a letter
	times  string // created, started, completed of each completed job
	reset  func(context.Context) error
}

// riverWorld is the River peer's database: on the same server as ours, migrated with
// rivermigrate (riverpeer.Migrate), with our users under the same ids so that one token
// serves both.
type riverWorld struct {
	name, dbURL string
	db          jobsDB
}

func newRiverWorld(ctx context.Context, cfg Config, name string, userIDs []int64) (*riverWorld, error) {
	rw := &riverWorld{name: name}
	var err error
	if rw.dbURL, err = testkit.WithDatabase(cfg.AdminDatabaseURL, name); err != nil {
		return nil, err
	}
	if err := database.EnsureDatabase(ctx, rw.dbURL); err != nil {
		return nil, err
	}
	pool, err := benchPool(ctx, rw.dbURL)
	if err != nil {
		return rw, err
	}
	rw.db = jobsDB{pool: pool, reset: func(ctx context.Context) error { return riverpeer.Reset(ctx, pool) },
		finals: `SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state IN ('cancelled', 'discarded')) FROM river_job`,
		times:  `SELECT created_at, attempted_at, finalized_at FROM river_job WHERE state = 'completed'`}
	if err := riverpeer.Migrate(ctx, pool); err != nil {
		return rw, err
	}
	for _, id := range userIDs {
		if err := riverpeer.AddUser(ctx, pool, id, fmt.Sprintf("bench-%d@%s.example", id, name)); err != nil {
			return rw, err
		}
	}
	return rw, nil
}

// close closes the pool and drops the database unless cfg.Keep (best effort: the run is over).
func (rw *riverWorld) close(cfg Config) {
	if rw == nil {
		return
	}
	if rw.db.pool != nil {
		rw.db.pool.Close()
	}
	if !cfg.Keep {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = testkit.DropDatabase(ctx, cfg.AdminDatabaseURL, rw.name)
	}
}

// RiverFigure is one figure measured for ours and for the River peer in the same run.
type RiverFigure struct {
	Run          string  `json:"run"`    // "enqueue c=32", "e2e 0s 1x32"
	Figure       string  `json:"figure"` // "ops/s", "p99 ms", "CPU ms/op"
	Ours         float64 `json:"ours"`
	River        float64 `json:"river"`
	HigherBetter bool    `json:"higherBetter"`
	Met          bool    `json:"met"`
	// EqualLoad: ours ran at River's rate (Results.AtRiverRate); shown, not counted in the
	// target, whose figures are both systems at their own limit.
	EqualLoad bool `json:"equalLoad,omitempty"`
}

// riverTolerance is how far below River a throughput may be and still count as at River:
// the resolution of counting jobs in a window (at 1 s latency both systems do exactly their
// capacity, give or take the job that ends on the window's edge).
const riverTolerance = 0.01

func newRiverFigure(run, figure string, ours, river float64, higherBetter bool) RiverFigure {
	f := RiverFigure{Run: run, Figure: figure, Ours: ours, River: river, HigherBetter: higherBetter}
	if higherBetter {
		f.Met = ours >= river*(1-riverTolerance)
	} else {
		f.Met = ours <= river
	}
	return f
}

// systemCPU is the CPU the system under test used per operation, in ms: its api, its workers,
// its PostgreSQL backends (with the server's background processes) and, for ours, RabbitMQ —
// not the LLM, the load client or others, which are the same for both.
func systemCPU(u CPUUse, n int, broker bool) float64 {
	if n <= 0 {
		return 0
	}
	sum := u.ByComponent["api"] + u.ByComponent["worker"] + u.ByComponent["postgres"]
	if broker {
		sum += u.ByComponent["rabbitmq"]
	}
	return float64(sum) / float64(n) / float64(time.Millisecond)
}

// RiverFigures pairs each River run with ours of the same settings: enqueue/s, p99 and CPU per
// enqueue; end-to-end jobs/s and CPU per job.
func (r *Results) RiverFigures() []RiverFigure {
	var fs []RiverFigure
	for _, rv := range r.RiverAPI {
		o := r.apiAt(rv.Concurrency)
		if o.Accepted == 0 {
			continue
		}
		run := fmt.Sprintf("enqueue c=%d", rv.Concurrency)
		fs = append(fs, newRiverFigure(run, "ops/s", o.PerSec, rv.PerSec, true),
			newRiverFigure(run, "p99 ms", msOf(o.Latency.P99), msOf(rv.Latency.P99), false),
			newRiverFigure(run, "CPU ms/op", systemCPU(o.CPU, o.Accepted, true), systemCPU(rv.CPU, rv.Accepted, false), false))
	}
	for _, rv := range r.RiverE2E {
		for _, o := range r.E2E {
			if !sameSettings(o.Spec, rv.Spec) {
				continue
			}
			run := "e2e " + rv.Spec.Name
			fs = append(fs, newRiverFigure(run, "jobs/s", o.JobsPerSec, rv.JobsPerSec, true),
				newRiverFigure(run, "CPU ms/job", systemCPU(o.CPU, o.Completed, true), systemCPU(rv.CPU, rv.Completed, false), false))
		}
		for _, o := range r.AtRiverRate {
			if sameSettings(o.Spec, rv.Spec) {
				f := newRiverFigure("e2e "+o.Spec.Name, "CPU ms/job", systemCPU(o.CPU, o.Completed, true), systemCPU(rv.CPU, rv.Completed, false), false)
				f.EqualLoad = true
				fs = append(fs, f)
			}
		}
	}
	return fs
}

// sameSettings says whether two end-to-end runs had the same latency, workers and concurrency.
func sameSettings(a, b E2ESpec) bool {
	return a.Latency == b.Latency && a.Workers == b.Workers && a.Conc == b.Conc
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// riverTarget is the target "at or above River on each figure"; figures at equal load are
// shown beside it, not counted.
func riverTarget(fs []RiverFigure) Target {
	var missed []string
	n := 0 // the figures counted
	for _, f := range fs {
		if f.EqualLoad {
			continue
		}
		n++
		if !f.Met {
			missed = append(missed, f.Run+" "+f.Figure)
		}
	}
	t := Target{What: "at or above River on each figure", Met: len(missed) == 0,
		Measured: fmt.Sprintf("%d of %d figures", n-len(missed), n)}
	if len(missed) > 0 {
		t.Measured += "; River ahead on " + strings.Join(missed, ", ")
	}
	return t
}

// mdRow is f's row of the side-by-side table.
func (f RiverFigure) mdRow() string {
	ratio := "–"
	if f.River > 0 {
		ratio = fmt.Sprintf("%.2f", f.Ours/f.River)
	}
	verdict := "yes"
	switch {
	case f.EqualLoad:
		verdict = "at equal load: not counted"
	case !f.Met:
		verdict = "**no**"
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", f.Run, f.Figure, rate(f.Ours), rate(f.River), ratio, verdict)
}
