// Package bench is `make bench`: it measures, side by side in one run, the raw limit of an
// enqueue done directly with pgx and amqp091-go, the real api's enqueue, the whole system end
// to end with the real worker processes and fakeopenai, the worker's per-job overhead, and
// the programs' footprint, and prints one line per figure and a markdown table
// (docs/benchmarks.md explains the method and keeps the latest table).
//
// Everything runs on 127.0.0.1 against the local PostgreSQL and RabbitMQ, in a fresh database
// (migrated with database.Migrate) and a fresh virtual host, both removed at the end. Every
// loop is bounded by time; every process it starts dies with it.
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a bench run's configuration; FromEnv reads it.
type Config struct {
	BinDir           string // the built api, worker and fakeopenai
	OutDir           string // logs, profiles, results.json, results.md
	AdminDatabaseURL string // a database on the server to create the bench database from
	AMQPURL          string // the RabbitMQ server (its vhost is replaced)
	ManagementURL    string // RabbitMQ's management API
	Users            int
	Profile          bool     // BENCH_PROFILE=1: CPU profiles of the raw path, the api and a worker
	Quick            bool     // BENCH_QUICK=1: short windows, to try the harness
	Keep             bool     // BENCH_KEEP=1: keep the database and the vhost
	Phases           []string // BENCH_PHASES: raw,api,e2e,overhead,free,river,experiments (default all), scale (only when named)
	E2E              []string // BENCH_E2E: only these end-to-end runs, by name ("0s 4x8,1s 1x32"; default all), each profiled if Profile
	Commit           string
	Stdout, Stderr   io.Writer
}

// FromEnv reads the configuration from the environment.
func FromEnv(getenv func(string) string, stdout, stderr io.Writer) Config {
	or := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	c := Config{
		BinDir:           or("BENCH_BIN", "bin/bench"),
		OutDir:           or("BENCH_OUT", "bin/bench/out"),
		AdminDatabaseURL: or("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		AMQPURL:          or("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		ManagementURL:    or("BENCH_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672"),
		Users:            256,
		Profile:          getenv("BENCH_PROFILE") == "1",
		Quick:            getenv("BENCH_QUICK") == "1",
		Keep:             getenv("BENCH_KEEP") == "1",
		Commit:           or("BENCH_COMMIT", "unknown"),
		Stdout:           stdout,
		Stderr:           stderr,
	}
	for _, p := range strings.Split(or("BENCH_PHASES", "raw,api,e2e,overhead,free,river,experiments"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.Phases = append(c.Phases, p)
		}
	}
	for _, n := range strings.Split(getenv("BENCH_E2E"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			c.E2E = append(c.E2E, n)
		}
	}
	return c
}

func (c Config) phase(name string) bool { return slices.Contains(c.Phases, name) }

// e2eRun says whether the end-to-end run named name is asked for (BENCH_E2E), and whether to
// profile it: the named runs, or by default 1 × 32.
func (c Config) e2eRun(name string, workers, conc int) (run, profile bool) {
	if len(c.E2E) == 0 {
		return true, c.Profile && workers == 1 && conc == 32
	}
	run = slices.Contains(c.E2E, name)
	return run, run && c.Profile
}

// durations of the runs; Quick shortens them to try the harness.
type durations struct {
	rawWarm, rawWindow, rawPartWindow time.Duration
	apiWarm, apiWindow                time.Duration
	e2eWarm, e2eWindow                time.Duration
	freeWindow, overheadWindow        time.Duration
}

func (c Config) durations() durations {
	if c.Quick {
		return durations{time.Second, 3 * time.Second, 2 * time.Second, time.Second, 3 * time.Second,
			time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	}
	return durations{time.Second, 10 * time.Second, 5 * time.Second, time.Second, 12 * time.Second,
		2 * time.Second, 15 * time.Second, 12 * time.Second, 15 * time.Second}
}

// Results is everything one run measured.
type Results struct {
	Commit  string        `json:"commit"`
	Started time.Time     `json:"started"`
	Took    time.Duration `json:"took"`
	Machine string        `json:"machine"`
	Raw     []RawResult   `json:"raw"`
	API     []APIResult   `json:"api"`
	// OneUser is ours at c=32 with every request from one user (a batch client).
	OneUser  *APIResult  `json:"apiOneUser,omitempty"`
	E2E      []E2EResult `json:"e2e"`
	Overhead *Overhead   `json:"overhead,omitempty"`
	Free     []E2EResult `json:"free"`
	// RiverAPI and RiverE2E are the River peer's runs (phase river), each beside ours with the
	// same settings in API and E2E.
	RiverAPI []APIResult `json:"riverApi"`
	RiverE2E []E2EResult `json:"riverE2e"`
	// AtRiverRate are ours at 0 s, open loop at the jobs/s River did in its run of the same
	// settings: CPU per job at equal load, apart from what saturation costs.
	AtRiverRate []E2EResult `json:"atRiverRate"`
	// Experiments are runs with one change to the bench database (see runExperiments).
	ExpAPI      []APIResult `json:"experimentsApi"`
	ExpOverhead []*Overhead `json:"experimentsOverhead"`
	Footprint   Footprint   `json:"footprint"`
	// Scale is BENCH_PHASES=scale: reads at a million jobs, a burst drained.
	Scale *Scale `json:"scale,omitempty"`
}

// Overhead is the worker's per-job time beyond the LLM call, at concurrency 1 and 0 s latency.
type Overhead struct {
	Run      E2EResult     `json:"run"`
	PerJob   time.Duration `json:"perJob"`   // window ÷ jobs completed
	LLM      time.Duration `json:"llm"`      // mean LLM call
	Overhead time.Duration `json:"overhead"` // PerJob − LLM
	// InClaim is claim → complete minus the LLM call (prompt, progress events, span and log
	// work around the call); Between is the rest: complete transaction, ack, next delivery,
	// claim transaction.
	InClaim     time.Duration `json:"inClaim"`
	Between     time.Duration `json:"between"`
	WorkerCPU   time.Duration `json:"workerCpuPerJob"`
	FakeLLMCPU  time.Duration `json:"fakeLlmCpuPerJob"`
	PostgresCPU time.Duration `json:"postgresCpuPerJob"`
	RabbitCPU   time.Duration `json:"rabbitmqCpuPerJob"`
	Experiment  string        `json:"experiment,omitempty"`
}

// Footprint is memory, size and start-up.
type Footprint struct {
	APIIdleRSS     []int64          `json:"apiIdleRss"`
	WorkerIdleRSS  []int64          `json:"workerIdleRss"`
	APIMaxRSS      int64            `json:"apiMaxRss"`
	WorkerMaxRSS   int64            `json:"workerMaxRss"`
	APIReady       []time.Duration  `json:"apiReady"`
	WorkerReady    []time.Duration  `json:"workerReady"`
	BinarySizes    map[string]int64 `json:"binarySizes"`
	BinaryBuildTag string           `json:"binaryBuild"`
	// RiverAPI and RiverWorker are the River peer's (riverpeer api and worker), if it ran.
	RiverAPI    *ProgFootprint `json:"riverApi,omitempty"`
	RiverWorker *ProgFootprint `json:"riverWorker,omitempty"`
}

// ProgFootprint is one program's memory and start-up: idle resident sets 1 s after ready, the
// largest under load, start → ready.
type ProgFootprint struct {
	IdleRSS []int64         `json:"idleRss"`
	MaxRSS  int64           `json:"maxRss"`
	Ready   []time.Duration `json:"ready"`
}

// run is one bench run: its configuration, durations, what it measured and the running system.
type run struct {
	cfg             Config
	d               durations
	res             *Results
	w               *world
	sys             *system
	logDir, profDir string
	raw             RawResult // the full raw run, the reference of the api's ratio
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.cfg.Stdout, "bench: "+format+"\n", args...)
}

func (r *run) fail(what string, err error) error {
	return fmt.Errorf("%s: %w (logs in %s)", what, err, r.logDir)
}

// Main runs the bench and prints its figures; it returns an error if a run failed.
func Main(ctx context.Context, cfg Config) error {
	r := &run{cfg: cfg, d: cfg.durations(), logDir: filepath.Join(cfg.OutDir, "logs"), profDir: filepath.Join(cfg.OutDir, "profiles"),
		res: &Results{Commit: cfg.Commit, Started: time.Now(), Footprint: Footprint{BinarySizes: map[string]int64{}}}}
	r.res.Machine = machineLine()
	r.say("commit %s; %s; phases %s%s", cfg.Commit, r.res.Machine, strings.Join(cfg.Phases, ","), map[bool]string{true: " (QUICK: short windows, not for the docs)"}[cfg.Quick])
	if err := r.prepare(); err != nil {
		return err
	}
	w, err := newWorld(ctx, cfg)
	if w != nil {
		defer w.close()
	}
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	r.w = w
	r.res.Machine += "; " + w.versions
	r.say("database %s, vhost %s, %d users; %s (pid %d, RabbitMQ pid %d)", w.name, w.name, len(w.userIDs), w.versions, w.pgPID, w.mqPID)
	r.sys = &system{w: w, cfg: cfg, logDir: r.logDir, profDir: r.profDir,
		pprof: cfg.Profile && supportsPprof(filepath.Join(cfg.BinDir, "api")) && supportsPprof(filepath.Join(cfg.BinDir, "worker"))}
	if cfg.Profile && !r.sys.pprof {
		r.say("BENCH_PROFILE=1 but the programs have no PPROF_ADDR: profiling only the bench's own raw path")
	}
	defer r.stopAll()
	if err := r.phases(ctx); err != nil {
		return err
	}
	r.report()
	return nil
}

// prepare makes the output directories and records the programs' sizes.
func (r *run) prepare() error {
	_ = os.RemoveAll(r.logDir) // the last run's logs; MkdirAll says if the directory is unusable
	for _, dir := range []string{r.logDir, r.profDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	programs := []string{"api", "worker", "fakeopenai"}
	if r.cfg.phase("river") {
		programs = append(programs, "riverpeer")
	}
	for _, name := range programs {
		st, err := os.Stat(filepath.Join(r.cfg.BinDir, name))
		if err != nil {
			return fmt.Errorf("%w (build the programs first: scripts/bench.sh does)", err)
		}
		r.res.Footprint.BinarySizes[name] = st.Size()
	}
	r.res.Footprint.BinaryBuildTag = "`CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'`, as the Dockerfile does"
	return nil
}

func (r *run) stopAll() {
	if err := r.sys.stopAll(); err != nil {
		fmt.Fprintf(r.cfg.Stderr, "bench: stopping programs: %v\n", err)
	}
}

// phases runs the phases asked for, in order.
func (r *run) phases(ctx context.Context) error {
	if r.cfg.phase("raw") {
		if err := r.phaseRaw(ctx); err != nil {
			return err
		}
	}
	if err := r.startAPIs(ctx); err != nil {
		return err
	}
	if r.cfg.phase("river") {
		if err := r.sys.startRiverAPI(ctx); err != nil {
			return r.fail("riverpeer api start", err)
		}
		r.say("River peer: riverpeer api start→ready %v, idle RSS %v (database %s)", roundAll(r.sys.riverAPIFp.Ready), mbAll(r.sys.riverAPIFp.IdleRSS), r.w.river.name)
	}
	if r.cfg.phase("api") || r.cfg.phase("river") {
		if err := r.phaseAPI(ctx); err != nil {
			return err
		}
	}
	// 3–4. End to end, by latency; the overhead and free-capacity runs at their latency.
	for _, lat := range []time.Duration{0, time.Second} {
		if err := r.phaseE2E(ctx, lat); err != nil {
			return err
		}
	}
	if r.cfg.phase("scale") {
		if err := r.phaseScale(ctx); err != nil {
			return err
		}
	}
	// Experiments: the same runs with one thing changed in the bench database only, to test
	// what the measurements above suggest. Not the product's configuration.
	if r.cfg.phase("experiments") {
		if err := runExperiments(ctx, r.sys, r.d, r.raw, r.res); err != nil {
			return r.fail("experiments", err)
		}
	}
	return nil
}

// phaseRaw is 1: the raw limit, with its two halves, and for reference the progress
// publisher's path and a worker's deliveries and acks.
func (r *run) phaseRaw(ctx context.Context) error {
	type rawRun struct {
		mode   rawMode
		conc   int
		window time.Duration
	}
	d := r.d
	for _, rr := range []rawRun{{rawFull, 32, d.rawWindow}, {rawInsert, 32, d.rawPartWindow}, {rawPublish, 32, d.rawPartWindow}, {rawProgress, 1, d.rawPartWindow}} {
		var stopProf func()
		if r.cfg.Profile && rr.mode == rawFull {
			stopProf = startSelfProfile(filepath.Join(r.profDir, "raw-bench.pb.gz"))
		}
		res, err := runRaw(ctx, r.w, rr.mode, rr.conc, d.rawWarm, rr.window, r.sys.components())
		if stopProf != nil {
			stopProf()
		}
		if err != nil {
			return r.fail("raw "+string(rr.mode), err)
		}
		r.res.Raw = append(r.res.Raw, res)
		if rr.mode == rawFull {
			r.raw = res
		}
		fmt.Fprintln(r.cfg.Stdout, res.line())
	}
	// What a worker's deliveries and acks cost RabbitMQ: at a worker's prefetch (its
	// concurrency), acked one by one or four at a time, and at prefetch 1.
	n := 20_000
	if r.cfg.Quick {
		n = 2_000
	}
	for _, rc := range []struct {
		mode        rawMode
		prefetch, n int
	}{{rawDeliver, 8, n}, {rawDeliverMulti, 8, n}, {rawDeliver, 1, n / 4}} {
		res, err := runRawConsume(ctx, r.w, rc.mode, rc.prefetch, rc.n, r.sys.components())
		if err != nil {
			return r.fail("raw "+string(rc.mode), err)
		}
		r.res.Raw = append(r.res.Raw, res)
		fmt.Fprintln(r.cfg.Stdout, res.line())
	}
	return nil
}

// startAPIs starts the api three times, for the start-to-ready figure, and leaves it running.
func (r *run) startAPIs(ctx context.Context) error {
	sys := r.sys
	for i := range 3 {
		if sys.api != nil {
			if err := sys.api.StopCleanly(30 * time.Second); err != nil {
				return r.fail("api stop", err)
			}
		}
		if err := sys.startAPI(ctx); err != nil {
			return r.fail("api start", err)
		}
		if i < 2 || !r.cfg.Quick {
			sys.sampleAPIIdle()
		}
	}
	r.say("api start→ready %v; idle RSS %v", roundAll(sys.apiReady), mbAll(sys.apiIdle))
	return nil
}

// phaseAPI is 2: the api's enqueue at two concurrencies, each followed by the River peer's
// (phase river), then ours at c=32 from one user alone.
func (r *run) phaseAPI(ctx context.Context) error {
	for _, conc := range []int{32, 128} {
		ar, err := r.enqueue(ctx, r.sys.stackOf(""), conc, 0)
		if err != nil {
			return err
		}
		r.res.API = append(r.res.API, ar)
		if !r.cfg.phase("river") {
			continue
		}
		if ar, err = r.enqueue(ctx, r.sys.stackOf("river"), conc, 0); err != nil {
			return err
		}
		r.res.RiverAPI = append(r.res.RiverAPI, ar)
	}
	if !r.cfg.phase("api") {
		return nil
	}
	one, err := r.enqueue(ctx, r.sys.stackOf(""), 32, 1)
	r.res.OneUser = &one
	return err
}

// enqueue measures st's enqueue at conc from empty tables, spread over the first users of the
// bench's (0: all of them), with a profile of our api at c=32 if asked, and prints its line.
func (r *run) enqueue(ctx context.Context, st stack, conc, users int) (APIResult, error) {
	if err := st.db.reset(ctx); err != nil {
		return APIResult{}, err
	}
	var profDone chan struct{}
	if st.peer == "" && r.cfg.Profile && r.sys.pprof && conc == 32 && users == 0 {
		profDone = make(chan struct{})
		go func() {
			defer close(profDone)
			r.profileAPI(ctx)
		}()
	}
	ar, err := runAPILoad(ctx, r.w, st, conc, users, r.d.apiWarm, r.d.apiWindow, r.sys.componentsOf(st))
	if profDone != nil {
		<-profDone
	}
	if err != nil {
		return ar, r.fail(fmt.Sprintf("%s enqueue c=%d", cmp.Or(st.peer, "api"), conc), err)
	}
	if r.raw.OpsPerSec > 0 {
		ar.RatioRaw = ar.PerSec / r.raw.OpsPerSec
	}
	fmt.Fprintln(r.cfg.Stdout, ar.line())
	return ar, st.db.reset(ctx)
}

// riverCase says whether an end-to-end case is also run with the River peer: the main ones,
// so that the run does not double in time.
func riverCase(workers, conc int) bool {
	return (workers == 1 && conc == 32) || (workers == 4 && conc == 8)
}

// profileAPI takes a CPU profile of the api over the enqueue window.
func (r *run) profileAPI(ctx context.Context) {
	time.Sleep(r.d.apiWarm + 1100*time.Millisecond)
	path := filepath.Join(r.profDir, "api-enqueue-c32-api.pb.gz")
	if err := fetchProfile(ctx, r.sys.apiPprof, max(int(r.d.apiWindow.Seconds())-1, 1), path); err != nil {
		fmt.Fprintf(r.cfg.Stderr, "bench: profile %s: %v\n", path, err)
	}
}

// phaseE2E is 3–4 at one LLM latency: end to end by workers and concurrency, then the
// overhead (at 0 s) and the free-capacity runs.
func (r *run) phaseE2E(ctx context.Context, lat time.Duration) error {
	d := r.d
	for _, workers := range []int{1, 2, 4} {
		for _, conc := range []int{8, 32} {
			name := fmt.Sprintf("%s %dx%d", latName(lat), workers, conc)
			asked, profile := r.cfg.e2eRun(name, workers, conc)
			river := r.cfg.phase("river") && riverCase(workers, conc) && asked
			if !asked || !r.cfg.phase("e2e") && !river {
				continue
			}
			spec := E2ESpec{Name: name, Latency: lat, Workers: workers, Conc: conc,
				Warm: d.e2eWarm, Window: d.e2eWindow, Profile: profile}
			if _, err := r.e2e(ctx, "e2e", spec, &r.res.E2E); err != nil {
				return err
			}
			if !river {
				continue
			}
			spec.Peer, spec.Profile = "river", false
			rv, err := r.e2e(ctx, "river e2e", spec, &r.res.RiverE2E)
			if err != nil {
				return err
			}
			if err := r.atRiverRate(ctx, spec, rv); err != nil {
				return err
			}
		}
	}
	if lat == 0 && r.cfg.phase("overhead") {
		spec := E2ESpec{Name: "0s 1x1", Latency: 0, Workers: 1, Conc: 1, Warm: d.e2eWarm, Window: d.overheadWindow}
		er, err := runE2E(ctx, r.sys, spec)
		if err != nil {
			return r.fail("overhead", err)
		}
		r.res.Overhead = overheadOf(er)
		fmt.Fprintln(r.cfg.Stdout, r.res.Overhead.line())
	}
	if r.cfg.phase("free") {
		return r.phaseFree(ctx, lat)
	}
	return nil
}

// atRiverRate runs ours as River's run rv of spec was, but open loop at the jobs/s River did:
// at 0 s River leaves most of the machine idle while ours saturates it, so their CPU per job
// is compared at unequal loads; this compares it at equal ones. At 1 s both do their
// capacity already.
func (r *run) atRiverRate(ctx context.Context, spec E2ESpec, rv E2EResult) error {
	if spec.Latency != 0 || rv.JobsPerSec <= 0 {
		return nil
	}
	spec.Name, spec.Peer, spec.Rate = spec.Name+" @River's rate", "", rv.JobsPerSec
	_, err := r.e2e(ctx, "e2e", spec, &r.res.AtRiverRate)
	return err
}

// e2e runs spec, appends its result to into and prints its line; what names it in an error.
func (r *run) e2e(ctx context.Context, what string, spec E2ESpec, into *[]E2EResult) (E2EResult, error) {
	er, err := runE2E(ctx, r.sys, spec)
	if err != nil {
		return er, r.fail(what+" "+spec.Name, err)
	}
	*into = append(*into, er)
	fmt.Fprintln(r.cfg.Stdout, er.line())
	return er, nil
}

// phaseFree runs at half of what one worker at concurrency 32 could do (at 0 s latency: half
// of what it did).
func (r *run) phaseFree(ctx context.Context, lat time.Duration) error {
	spec := E2ESpec{Name: latName(lat) + " 1x32 @50%", Latency: lat, Workers: 1, Conc: 32, Warm: r.d.e2eWarm, Window: r.d.freeWindow}
	spec.Rate = spec.capacity() / 2
	if lat == 0 {
		spec.Rate = 50
		for _, e := range r.res.E2E {
			if e.Spec.Latency == 0 && e.Spec.Workers == 1 && e.Spec.Conc == 32 && e.JobsPerSec > 0 {
				spec.Rate = e.JobsPerSec / 2
			}
		}
	}
	_, err := r.e2e(ctx, "free", spec, &r.res.Free)
	return err
}

// report is 5, the footprint, then the noise, the targets, the table and the files.
func (r *run) report() {
	out, res, sys := r.cfg.Stdout, r.res, r.sys
	sys.mu.Lock()
	res.Footprint.APIIdleRSS, res.Footprint.WorkerIdleRSS = sys.apiIdle, sys.workIdle
	res.Footprint.APIMaxRSS, res.Footprint.WorkerMaxRSS = sys.apiMaxRSS, sys.workMaxRSS
	res.Footprint.APIReady, res.Footprint.WorkerReady = sys.apiReady, sys.workReady
	if sys.riverAPI != nil {
		res.Footprint.RiverAPI, res.Footprint.RiverWorker = &sys.riverAPIFp, &sys.riverWorkFp
	}
	sys.mu.Unlock()
	fmt.Fprintln(out, res.Footprint.line())
	if mean, worst, name := res.noise(); name != "" {
		fmt.Fprintf(out, "noise            other_cpu mean=%.2f cores worst=%.2f cores (%s)\n", mean, worst, name)
	}
	for _, t := range res.Targets() {
		verdict := "MISSED"
		if t.Met {
			verdict = "met"
		}
		fmt.Fprintf(out, "target %-62s %-7s %s %s\n", t.What, verdict, t.Measured, t.By)
	}
	r.stopAll()
	res.Took = time.Since(res.Started)
	table := res.Markdown()
	fmt.Fprintln(out)
	fmt.Fprintln(out, table)
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		r.writeFile("results.json", b)
	}
	r.writeFile("results.md", []byte(table))
	r.say("took %s; results in %s/results.{md,json}, logs in %s", res.Took.Round(time.Second), r.cfg.OutDir, r.logDir)
}

func (r *run) writeFile(name string, b []byte) {
	if err := os.WriteFile(filepath.Join(r.cfg.OutDir, name), b, 0o644); err != nil {
		fmt.Fprintf(r.cfg.Stderr, "bench: %v\n", err)
	}
}

func latName(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s" }

func overheadOf(r E2EResult) *Overhead {
	o := &Overhead{Run: r}
	if r.Completed == 0 {
		return o
	}
	n := time.Duration(r.Completed)
	o.PerJob = r.Spec.Window / n
	o.LLM = r.LLMMean
	o.Overhead = o.PerJob - o.LLM
	o.InClaim = r.ClaimToComplete.Mean - o.LLM
	o.Between = o.PerJob - r.ClaimToComplete.Mean
	o.WorkerCPU = r.CPU.ByComponent["worker"] / n
	o.FakeLLMCPU = r.CPU.ByComponent["fakeopenai"] / n
	o.PostgresCPU = r.CPU.ByComponent["postgres"] / n
	o.RabbitCPU = r.CPU.ByComponent["rabbitmq"] / n
	return o
}

func (o *Overhead) line() string {
	name := "overhead 0s 1x1 "
	if o.Experiment != "" {
		name = "experiment " + o.Experiment + ": overhead 0s 1x1"
	}
	return fmt.Sprintf("%s per_job=%sms llm_call=%sms overhead=%sms (in claim→complete beside the call %sms; between jobs: complete tx, ack, next delivery, claim tx %sms) worker_cpu=%sms/job fakeopenai_cpu=%sms/job postgres_cpu=%sms/job rabbitmq_cpu=%sms/job jobs=%d",
		name, ms(o.PerJob), ms(o.LLM), ms(o.Overhead), ms(o.InClaim), ms(o.Between), ms(o.WorkerCPU), ms(o.FakeLLMCPU),
		ms(o.PostgresCPU), ms(o.RabbitCPU), o.Run.Completed) + " " + o.Run.Waits.String()
}

func (f Footprint) line() string {
	sizes := make([]string, 0, len(f.BinarySizes))
	for _, k := range []string{"api", "worker", "fakeopenai", "riverpeer"} {
		if _, ok := f.BinarySizes[k]; !ok {
			continue
		}
		sizes = append(sizes, k+"="+mb(f.BinarySizes[k])+"MB")
	}
	river := ""
	if f.RiverAPI != nil && f.RiverWorker != nil {
		river = fmt.Sprintf(" river{api_idle_rss=%sMB worker_idle_rss=%sMB (median) api_max_rss=%sMB worker_max_rss=%sMB worker_start→ready p50=%sms max=%sms (n=%d)}",
			mb(medianInt(f.RiverAPI.IdleRSS)), mb(medianInt(f.RiverWorker.IdleRSS)), mb(f.RiverAPI.MaxRSS), mb(f.RiverWorker.MaxRSS),
			ms(Quantile(f.RiverWorker.Ready, 0.5)), ms(Quantile(f.RiverWorker.Ready, 1)), len(f.RiverWorker.Ready))
	}
	return fmt.Sprintf("footprint        api_idle_rss=%sMB worker_idle_rss=%sMB (median) api_max_rss=%sMB worker_max_rss=%sMB api_start→ready p50=%sms max=%sms (n=%d) worker_start→ready p50=%sms max=%sms (n=%d) binaries{%s}%s",
		mb(medianInt(f.APIIdleRSS)), mb(medianInt(f.WorkerIdleRSS)), mb(f.APIMaxRSS), mb(f.WorkerMaxRSS),
		ms(Quantile(f.APIReady, 0.5)), ms(Quantile(f.APIReady, 1)), len(f.APIReady),
		ms(Quantile(f.WorkerReady, 0.5)), ms(Quantile(f.WorkerReady, 1)), len(f.WorkerReady), strings.Join(sizes, " "), river)
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func maxInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func mbAll(v []int64) []string {
	out := make([]string, len(v))
	for i, b := range v {
		out[i] = mb(b) + "MB"
	}
	return out
}

// startSelfProfile profiles the bench process itself until the returned func is called.
func startSelfProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// machineLine describes the machine: CPUs, memory, kernel.
func machineLine() string {
	cpus := 0
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "processor") {
				cpus++
			}
			if v, ok := strings.CutPrefix(line, "model name"); ok && model == "" {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
		}
	}
	memGB := 0.0
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			memGB = kb / (1 << 20)
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %.0f GiB", cpus, model, memGB)
}

// execOutput runs a command briefly and returns its standard output.
func execOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).Output()
	return string(b), err
}
