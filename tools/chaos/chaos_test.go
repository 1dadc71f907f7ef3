package chaos

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/tools/loadgen"
)

// harness is the run's: one PostgreSQL, one RabbitMQ node, the built programs. Scenarios run
// one after another on it, each with its own database, virtual host and processes.
var (
	harnessOnce sync.Once
	harness     *Harness
	harnessErr  error
)

func enabled(t *testing.T) {
	t.Helper()
	if os.Getenv("CAREEROPS_CHAOS") != "1" {
		t.Skip("the fault suite runs with `make chaos` (CAREEROPS_CHAOS=1)")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if harness != nil {
		keep := code != 0 || os.Getenv("CHAOS_KEEP") == "1"
		harness.Close(keep)
		if keep {
			fmt.Printf("chaos: logs, databases and node data kept in %s\n", harness.Root)
		}
	}
	os.Exit(code)
}

// getHarness starts the run's services once; every scenario shares them.
func getHarness(t *testing.T) *Harness {
	t.Helper()
	harnessOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var flags []string
		if f := os.Getenv("CHAOS_BUILD_FLAGS"); f != "" {
			flags = strings.Fields(f)
		}
		harness, harnessErr = NewHarness(ctx, Options{
			Dir: os.Getenv("CHAOS_DIR"), BuildFlags: flags, ModuleRoot: "../..",
			Logf: func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
		})
	})
	if harnessErr != nil {
		t.Fatalf("chaos: start the harness: %v", harnessErr)
	}
	return harness
}

// run is one scenario's run: the load, its faults, and what the faults saw.
type run struct {
	t        *testing.T
	s        *System
	accepted atomic.Int64
	ctx      context.Context
	extra    []string // figures the faults add to the line
	problems []string // what the faults themselves found wrong
	mu       sync.Mutex
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra = append(r.extra, fmt.Sprintf(format, args...))
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// waitAccepted waits until at least n jobs were accepted (or the load ended).
func (r *run) waitAccepted(n int64, loadDone <-chan struct{}) {
	for r.accepted.Load() < n {
		select {
		case <-r.ctx.Done():
			return
		case <-loadDone:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// sleep waits d or until the scenario's context ends.
func (r *run) sleep(d time.Duration) {
	select {
	case <-r.ctx.Done():
	case <-time.After(d):
	}
}

// scenario is one fault scenario.
type scenario struct {
	name string
	sys  SystemConfig
	load loadgen.Config // Jobs, Rate, Concurrency, retry settings; the rest is filled in
	// marker returns extra text for job i's description (fakeopenai markers), or "".
	marker func(i int) string
	// faults runs while the load runs and returns when the last fault is over.
	faults func(r *run, loadDone <-chan struct{})
	// check adjusts the end check.
	check func(r *run, c *Check)
	// after runs after the end check, before the shutdown: more checks of its own.
	after func(r *run, f *Figures)
	// setup adjusts the load's configuration (hooks) once the run exists.
	setup func(r *run, cfg *loadgen.Config)
	// minAccepted is how many jobs the load must get accepted; 0 means 300.
	minAccepted int
	// smtp runs a test SMTP server in the suite's process for the workers' email
	// (SystemConfig.SMTP).
	smtp bool
}

const cvText = "Eight years of backend work in Go and PostgreSQL: a payments ledger with exactly-once " +
	"settlement, RabbitMQ pipelines of 20k messages a second, on-call lead for a team of six. " +
	"Education: BSc Computer Science. Languages: English, Spanish."

func refOf(name string, i int) string { return fmt.Sprintf("%s-%d", name, i) }

// runScenario runs sc from a fresh system to the figures line.
func runScenario(t *testing.T, sc scenario) {
	t.Helper()
	enabled(t)
	h := getHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	started := time.Now()
	sc.sys.Name = sc.name
	if sc.smtp {
		sc.sys.SMTP = testkit.StartSMTPServer(t, testkit.SMTPOptions{})
	}
	s, err := NewSystem(ctx, h, sc.sys)
	if s != nil {
		defer func() {
			// Whatever happened, nothing of this scenario keeps running.
			for _, p := range s.Shutdown(15 * time.Second) {
				t.Errorf("after the scenario: %s", p)
			}
			t.Logf("SIGTERM to exit: %s", strings.Join(s.StopTimes(), " "))
		}()
	}
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	r := &run{t: t, s: s, ctx: ctx}
	rep, faultsOver := r.loadWithFaults(sc)
	r.checkLoad(rep, cmp.Or(sc.minAccepted, 300))
	check := Check{Jobs: ExpectedFromLoad(rep, func(i int) string { return refOf(sc.name, i) }), FaultsOver: faultsOver}
	if sc.check != nil {
		sc.check(r, &check)
	}
	r.checkAlive()
	figures, problems := s.Verify(ctx, check)
	figures.Extra = append(append([]string{}, r.extra...), figures.Extra...)
	figures.Extra = append(figures.Extra, fmt.Sprintf("post_answers=%s", answers(rep)), fmt.Sprintf("took=%.0fs", time.Since(started).Seconds()))
	if sc.after != nil {
		sc.after(r, &figures)
	}
	problems = append(r.problems, problems...)
	line := figures.Line()
	fmt.Println(line)
	if figures.Redelivered > 0 {
		t.Logf("%d completion messages published again (at least once; same message id): %s", figures.Redelivered, figures.RedeliveryCause)
	}
	if path := os.Getenv("CHAOS_FIGURES"); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, line)
			_ = f.Close() // the line is in the test log too
		}
	}
	report(t, s, problems)
}

// loadConfig is sc's load on r's system.
func (r *run) loadConfig(sc scenario) loadgen.Config {
	cfg := sc.load
	cfg.BaseURL, cfg.Tokens = r.s.APIURL, r.s.Tokens
	cfg.KeyPrefix = sc.name
	if cfg.MaxRetryWait == 0 {
		cfg.MaxRetryWait = time.Second
	}
	if cfg.GiveUpAfter == 0 {
		cfg.GiveUpAfter = 3 * time.Minute
	}
	cfg.Body = func(i int) loadgen.Request {
		marker := ""
		if sc.marker != nil {
			marker = sc.marker(i)
		}
		tones := []string{"", "professional", "friendly", "concise"}
		return loadgen.Request{
			JobDescription: fmt.Sprintf("%s %s Role %d: senior platform engineer at a fintech; Go, PostgreSQL, RabbitMQ, incident response.",
				Ref(refOf(sc.name, i)), marker, i),
			CVText: cvText, Tone: tones[i%len(tones)],
		}
	}
	prevAccepted := cfg.OnAccepted
	cfg.OnAccepted = func(j loadgen.JobResult) {
		r.accepted.Add(1)
		if prevAccepted != nil {
			prevAccepted(j)
		}
	}
	if sc.setup != nil {
		sc.setup(r, &cfg)
	}
	return cfg
}

// loadWithFaults runs the load and the faults side by side and returns the load's report and
// when the last of both ended.
func (r *run) loadWithFaults(sc scenario) (*loadgen.Report, time.Time) {
	cfg := r.loadConfig(sc)
	loadDone := make(chan struct{})
	var rep *loadgen.Report
	var loadErr error
	go func() {
		defer close(loadDone)
		rep, loadErr = loadgen.Run(r.ctx, cfg)
	}()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		if sc.faults != nil {
			sc.faults(r, loadDone)
		}
	}()
	<-loadDone
	<-faultsDone
	faultsOver := time.Now()
	if loadErr != nil {
		r.t.Fatalf("load: %v", loadErr)
	}
	r.t.Log(loadgen.Summary(rep, nil))
	return rep, faultsOver
}

// checkLoad: at least minAccepted jobs accepted, none rejected or given up, no server fault
// answered.
func (r *run) checkLoad(rep *loadgen.Report, minAccepted int) {
	if n := rep.Count(loadgen.Accepted); n < minAccepted {
		r.problem("only %d jobs accepted (202), want at least %d in this scenario", n, minAccepted)
	}
	for _, j := range rep.Jobs {
		if j.Outcome == loadgen.Rejected || j.Outcome == loadgen.GaveUp {
			r.problem("load: job %d %s after %d tries: last answer %d %s", j.Index, j.Outcome, j.Tries, j.Status, j.Error)
		}
	}
	for code, n := range rep.Answers {
		if code >= 500 && code != 503 {
			r.problem("load: the api answered %d to %d requests (a server fault, not a stated unavailability)", code, n)
		}
	}
}

// checkAlive: the api and every worker not killed on purpose still run; none crashed.
func (r *run) checkAlive() {
	s := r.s
	if s.API.Exited() {
		r.problem("the api exited by itself with %d; see %s", s.API.ExitCode(), s.API.Log)
	}
	for _, w := range s.AllWorkers() {
		if w.Exited() && w.KilledAt.IsZero() && !w.Stopped {
			r.problem("worker %s exited by itself with %d; see %s", w.ID, w.ExitCode(), w.Log)
		}
	}
}

// report fails the test with every problem and explains the first jobs involved.
func report(t *testing.T, s *System, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	const shown = 40
	for i, p := range problems {
		if i == shown {
			t.Errorf("… and %d more problems", len(problems)-shown)
			break
		}
		t.Error(p)
	}
	explained := 0
	for _, p := range problems {
		if explained == 5 {
			break
		}
		if id := firstJobID(p); id != "" {
			t.Log(s.Explain(context.Background(), id))
			explained++
		}
	}
	t.Logf("logs: %s", filepath.Join(s.H.LogDir, s.Cfg.Name+"-*.log"))
}

// firstJobID finds the first job id named in a problem ("job <id> ").
func firstJobID(p string) string {
	_, after, ok := strings.Cut(p, "job ")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(after, " ")
	id = strings.Trim(id, ":,()")
	if len(id) < 8 {
		return ""
	}
	return id
}

func answers(rep *loadgen.Report) string {
	var parts []string
	for _, code := range []int{0, 200, 202, 429, 500, 503} {
		if n := rep.Answers[code]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d", code, n))
		}
	}
	for code, n := range rep.Answers {
		switch code {
		case 0, 200, 202, 429, 500, 503:
		default:
			parts = append(parts, fmt.Sprintf("%d:%d", code, n))
		}
	}
	return strings.Join(parts, ",")
}
