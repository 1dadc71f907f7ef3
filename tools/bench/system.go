package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/careerops/jobs/internal/testkit"
)

// system runs the real programs against the bench's world: one api, one fakeopenai, and the
// workers of the current run.
type system struct {
	w       *world
	cfg     Config
	logDir  string
	profDir string
	pprof   bool // the programs serve PPROF_ADDR

	api      *testkit.Proc
	apiURL   string
	apiPprof string

	fake    *testkit.Proc
	fakeURL string
	fakeLat time.Duration

	workers []*workerProc
	seq     int

	riverAPI    *testkit.Proc // the River peer's api (riverpeer api), once a river run needs it
	riverURL    string
	riverAPIFp  ProgFootprint // the peer's footprint, apart from ours
	riverWorkFp ProgFootprint

	mu         sync.Mutex
	apiReady   []time.Duration
	apiIdle    []int64
	workReady  []time.Duration
	workIdle   []int64
	apiMaxRSS  int64
	workMaxRSS int64
}

type workerProc struct {
	*testkit.Proc
	admin string // http://127.0.0.1:port
	pprof string // host:port or ""
}

// supportsPprof reports whether a program lists PPROF_ADDR in its --help.
func supportsPprof(bin string) bool {
	out, err := execOutput(bin, "--help")
	return err == nil && strings.Contains(out, "PPROF_ADDR")
}

// startAPI starts an api and waits until /readyz answers 200.
func (s *system) startAPI(ctx context.Context) error {
	port, err := testkit.FreePort()
	if err != nil {
		return err
	}
	s.apiURL = "http://127.0.0.1:" + strconv.Itoa(port)
	env := testkit.ChildEnv("DATABASE_URL="+s.w.dbURL, "RABBITMQ_URL="+s.w.amqpURL, "JWT_SECRET="+jwtSecret,
		"HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"USER_REQUESTS_PER_MINUTE=0", "USER_JOBS_PER_MINUTE=0", "USER_TOKENS_PER_DAY=0")
	if env, s.apiPprof, err = withPprof(env, s.pprof); err != nil {
		return err
	}
	p, err := s.startReady(ctx, "api", nil, env, s.apiURL+"/readyz", &s.apiReady)
	if p != nil {
		s.api = p
	}
	return err
}

// startRiverAPI starts the River peer's api, configured as ours is, unless it runs.
func (s *system) startRiverAPI(ctx context.Context) error {
	if s.riverAPI != nil && !s.riverAPI.Exited() {
		return nil
	}
	port, err := testkit.FreePort()
	if err != nil {
		return err
	}
	s.riverURL = "http://127.0.0.1:" + strconv.Itoa(port)
	env := testkit.ChildEnv("DATABASE_URL="+s.w.river.dbURL, "JWT_SECRET="+jwtSecret, "HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))
	p, err := s.startReady(ctx, "riverpeer", []string{"api"}, env, s.riverURL+"/readyz", &s.riverAPIFp.Ready)
	if p != nil {
		s.riverAPI = p
	}
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	if rss, err := rssBytes(p.Pid()); err == nil {
		s.riverAPIFp.IdleRSS = append(s.riverAPIFp.IdleRSS, rss)
	}
	return nil
}

// stack is a system under test as a run sees it: ours, or the River peer ("river").
type stack struct {
	peer       string // "" for ours
	db         jobsDB
	dbURL      string
	apiURL     string
	api        *testkit.Proc
	workerProg string
	workerArgs []string
	ready      *[]time.Duration // where its workers' start → ready times go
	idle       *[]int64         // and their idle resident sets (nil: not measured)
	apiMax     *int64           // the largest resident set of its api under load
	workMax    *int64           // and of its workers
}

// stackOf is the system under test of a run: ours for peer "", else the River peer.
func (s *system) stackOf(peer string) stack {
	if peer == "" {
		return stack{db: s.w.ours, dbURL: s.w.dbURL, apiURL: s.apiURL, api: s.api, workerProg: "worker",
			ready: &s.workReady, idle: &s.workIdle, apiMax: &s.apiMaxRSS, workMax: &s.workMaxRSS}
	}
	return stack{peer: peer, db: s.w.river.db, dbURL: s.w.river.dbURL, apiURL: s.riverURL, api: s.riverAPI,
		workerProg: "riverpeer", workerArgs: []string{"worker"}, ready: &s.riverWorkFp.Ready, idle: &s.riverWorkFp.IdleRSS,
		apiMax: &s.riverAPIFp.MaxRSS, workMax: &s.riverWorkFp.MaxRSS}
}

// startReady starts the program prog of BinDir with args and env as "<prog>-<seq>", waits up
// to 30 s until readyURL answers 200 and appends how long that took to *ready. The process is
// returned, to be stopped, even when it does not get ready.
func (s *system) startReady(ctx context.Context, prog string, args, env []string, readyURL string, ready *[]time.Duration) (*testkit.Proc, error) {
	s.seq++
	p, err := startProc(fmt.Sprintf("%s-%d", prog, s.seq), filepath.Join(s.cfg.BinDir, prog), args, env, s.logDir)
	if err != nil {
		return nil, err
	}
	took, err := p.WaitReady(ctx, readyURL, 30*time.Second, 2*time.Millisecond)
	if err != nil {
		return p, err
	}
	s.mu.Lock()
	*ready = append(*ready, took)
	s.mu.Unlock()
	return p, nil
}

// sampleAPIIdle records the api's resident set after it has idled a second.
func (s *system) sampleAPIIdle() {
	time.Sleep(time.Second)
	if rss, err := rssBytes(s.api.Pid()); err == nil {
		s.apiIdle = append(s.apiIdle, rss)
	}
}

// startFake (re)starts fakeopenai with latency.
func (s *system) startFake(ctx context.Context, latency time.Duration) error {
	if s.fake != nil {
		if err := s.fake.StopCleanly(15 * time.Second); err != nil {
			return err
		}
	}
	port, err := testkit.FreePort()
	if err != nil {
		return err
	}
	s.fakeURL = "http://127.0.0.1:" + strconv.Itoa(port)
	s.seq++
	p, err := startProc(fmt.Sprintf("fakeopenai-%d", s.seq), filepath.Join(s.cfg.BinDir, "fakeopenai"),
		[]string{"--addr", "127.0.0.1:" + strconv.Itoa(port), "--latency", latency.String()}, testkit.ChildEnv(), s.logDir)
	if err != nil {
		return err
	}
	s.fake, s.fakeLat = p, latency
	_, err = p.WaitReady(ctx, s.fakeURL+"/healthz", 15*time.Second, 2*time.Millisecond)
	return err
}

// workerConns is the pool size the bench gives each worker: the default (concurrency + 4)
// unless all workers together would then crowd PostgreSQL's max_connections (100 here, shared
// with the api, the relays' LISTEN connections and whoever else uses the server).
func workerConns(workers, conc int) int {
	return min(conc+4, 56/workers)
}

// startWorkers starts n workers of st with concurrency conc, one after the other, each
// waited for until ready, then records their idle resident sets (unless st.idle is nil).
func (s *system) startWorkers(ctx context.Context, st stack, n, conc int, profile bool) error {
	for i := range n {
		port, err := testkit.FreePort()
		if err != nil {
			return err
		}
		env := testkit.ChildEnv("DATABASE_URL="+st.dbURL, "RABBITMQ_URL="+s.w.amqpURL,
			"OPENAI_API_KEY=sk-bench", "OPENAI_BASE_URL="+s.fakeURL+"/v1", "OPENAI_MODEL=fake-gpt",
			"ADMIN_ADDR=127.0.0.1:"+strconv.Itoa(port), "WORKER_CONCURRENCY="+strconv.Itoa(conc),
			"DATABASE_MAX_CONNS="+strconv.Itoa(workerConns(n, conc)))
		wp := &workerProc{admin: "http://127.0.0.1:" + strconv.Itoa(port)}
		if env, wp.pprof, err = withPprof(env, profile && s.pprof && i == 0); err != nil {
			return err
		}
		p, err := s.startReady(ctx, st.workerProg, st.workerArgs, env, wp.admin+"/readyz", st.ready)
		if p != nil {
			wp.Proc = p
			s.workers = append(s.workers, wp)
		}
		if err != nil {
			return err
		}
	}
	if st.idle == nil {
		return nil
	}
	time.Sleep(time.Second)
	for _, wp := range s.workers {
		if rss, err := rssBytes(wp.Pid()); err == nil {
			*st.idle = append(*st.idle, rss)
		}
	}
	return nil
}

// stopWorkers stops every worker with SIGTERM (they have nothing in flight by then).
func (s *system) stopWorkers() error {
	var first error
	for _, wp := range s.workers {
		if err := wp.StopCleanly(45 * time.Second); err != nil && first == nil {
			first = err
		}
	}
	s.workers = nil
	return first
}

// stopAll stops every program the system started.
func (s *system) stopAll() error {
	first := s.stopWorkers()
	for _, p := range []*testkit.Proc{s.api, s.riverAPI, s.fake} {
		if p == nil {
			continue
		}
		if err := p.StopCleanly(30 * time.Second); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// components are the process groups whose CPU the bench counts in our runs.
func (s *system) components() []component { return s.componentsOf(s.stackOf("")) }

// componentsOf are the process groups whose CPU the bench counts in a run of st: its api, its
// workers, its database's backends (and the server's background processes), RabbitMQ,
// fakeopenai and the bench; the other stack's idle api is "other".
func (s *system) componentsOf(st stack) []component {
	pool := st.db.pool
	comps := []component{{name: "bench", pidsFn: func() []int { return benchPIDs(pool) }},
		{name: "postgres", pidsFn: func() []int { return postgresPIDs(pool) }},
		{name: "rabbitmq", pids: []int{s.w.mqPID}, tree: true}}
	if st.api != nil && !st.api.Exited() {
		comps = append(comps, component{name: "api", pids: []int{st.api.Pid()}})
	}
	if s.fake != nil && !s.fake.Exited() {
		comps = append(comps, component{name: "fakeopenai", pids: []int{s.fake.Pid()}})
	}
	if len(s.workers) > 0 {
		c := component{name: "worker"}
		for _, wp := range s.workers {
			c.pids = append(c.pids, wp.Pid())
		}
		comps = append(comps, c)
	}
	return comps
}

// sampleRSS records the largest resident sets of st's api and the workers every 250 ms until
// stop is closed.
func (s *system) sampleRSS(st stack, stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if st.api != nil {
			if rss, err := rssBytes(st.api.Pid()); err == nil {
				*st.apiMax = max(*st.apiMax, rss)
			}
		}
		for _, wp := range s.workers {
			if rss, err := rssBytes(wp.Pid()); err == nil {
				*st.workMax = max(*st.workMax, rss)
			}
		}
		s.mu.Unlock()
	}
}

// histSumCount reads a histogram's sum and count from a /metrics page, over the series whose
// labels include want.
func histSumCount(ctx context.Context, url, name string, want map[string]string) (float64, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	fam, ok := fams[name]
	if !ok {
		return 0, 0, nil
	}
	var (
		sum   float64
		count uint64
	)
next:
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		sum += m.GetHistogram().GetSampleSum()
		count += m.GetHistogram().GetSampleCount()
	}
	return sum, count, nil
}

// fetchProfile saves a CPU profile of seconds from a pprof address to path.
func fetchProfile(ctx context.Context, addr string, seconds int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: time.Duration(seconds+30) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("pprof %s: %d %s", addr, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// withPprof adds PPROF_ADDR on a free port to env if on, and returns that address too.
func withPprof(env []string, on bool) ([]string, string, error) {
	if !on {
		return env, "", nil
	}
	port, err := testkit.FreePort()
	if err != nil {
		return env, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return append(env, "PPROF_ADDR="+addr), addr, nil
}
