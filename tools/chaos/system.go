package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/testkit"
)

// JWTSecret signs the suite's user tokens.
const JWTSecret = "chaos-suite-secret-0123456789abcdef-0123456789"

// SystemConfig describes one scenario's system.
type SystemConfig struct {
	Name    string // scenario name: database, vhost and process names derive from it
	Workers int
	// WorkerEnv overrides the workers' defaults (see workerEnv).
	WorkerEnv map[string]string
	// FakeArgs are fakeopenai's flags beyond --addr.
	FakeArgs []string
	// Users is how many users submit jobs. Defaults to 5.
	Users int
	// Fallback gives the workers a fallback LLM endpoint: a second fakeopenai with Azure's
	// wire (FallbackModel) behind a counting proxy of its own, with FallbackArgs as its flags.
	Fallback     bool
	FallbackArgs []string
	// SMTP, if set, is the test SMTP server the workers send email through; every user
	// opts in to email about their jobs.
	SMTP *testkit.SMTPServer
}

// The models of the suite's LLM endpoints: what a job's model column says wrote its letter.
const (
	PrimaryModel  = "fake-gpt"
	FallbackModel = "fake-gpt-mini"
)

// System is a scenario's running system: its own database and virtual host on the run's
// PostgreSQL and RabbitMQ, one fakeopenai behind the counting proxy, one api and workers.
type System struct {
	H       *Harness
	Cfg     SystemConfig
	DBURL   string
	AMQP    string
	Pool    *pgxpool.Pool
	Proxy   *LLMProxy
	Fake    *testkit.Proc
	FakeURL string
	// FallbackProxy, FallbackFake and FallbackURL are the fallback endpoint's, with
	// SystemConfig.Fallback.
	FallbackProxy *LLMProxy
	FallbackFake  *testkit.Proc
	FallbackURL   string
	API           *testkit.Proc
	APIURL        string
	Tokens        []string

	apiPort int
	apis    []*testkit.Proc

	stopTimes []string // how long each process took to stop at Shutdown

	mu      sync.Mutex
	workers []*WorkerProc
	workerN int
}

// WorkerProc is one worker process.
type WorkerProc struct {
	*testkit.Proc
	ID       string    // its name in the proxy's paths
	KilledAt time.Time // zero unless killed with SIGKILL
	Stopped  bool      // stopped with SIGTERM by the scenario
}

// NewSystem creates the scenario's database (migrated by careeropsctl) and virtual host,
// and starts fakeopenai, the proxy, the api and the workers.
func NewSystem(ctx context.Context, h *Harness, cfg SystemConfig) (*System, error) {
	if cfg.Users <= 0 {
		cfg.Users = 5
	}
	s := &System{H: h, Cfg: cfg, apiPort: h.Port()}
	db := "chaos_" + strings.ReplaceAll(cfg.Name, "-", "_")
	if err := h.Postgres.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return nil, err
	}
	if err := h.Postgres.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
		return nil, err
	}
	s.DBURL = h.Postgres.URL(db)
	if err := h.RabbitMQ.AddVhost(ctx, cfg.Name); err != nil {
		return nil, err
	}
	s.AMQP = h.RabbitMQ.URL(cfg.Name)
	if _, err := s.Ctl(ctx, "migrate", "up"); err != nil {
		return nil, err
	}
	var err error
	if s.Pool, err = pgxpool.New(ctx, s.DBURL); err != nil {
		return nil, err
	}
	for i := range cfg.Users {
		id, err := s.Ctl(ctx, "user", "add", "--email", fmt.Sprintf("user%d@%s.chaos.example", i, cfg.Name))
		if err != nil {
			return s, err
		}
		token, err := s.Ctl(ctx, "token", "--user", id, "--ttl", "2h")
		if err != nil {
			return s, err
		}
		s.Tokens = append(s.Tokens, token)
	}
	if cfg.SMTP != nil {
		// As PATCH /api/me/notifications {"email": true} does, for every user at once.
		if _, err := s.Pool.Exec(ctx, `UPDATE users SET email_notifications = true`); err != nil {
			return s, err
		}
	}

	if s.Fake, s.FakeURL, s.Proxy, err = s.startFake(ctx, "fakeopenai", cfg.FakeArgs); err != nil {
		return s, err
	}
	if cfg.Fallback {
		args := append([]string{"--profile", "azure"}, cfg.FallbackArgs...)
		if s.FallbackFake, s.FallbackURL, s.FallbackProxy, err = s.startFake(ctx, "fakeopenai-fallback", args); err != nil {
			return s, err
		}
	}
	if err := s.StartAPI(ctx); err != nil {
		return s, err
	}
	for range cfg.Workers {
		if _, err := s.StartWorker(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// startFake starts a fakeopenai with args and a counting proxy in front of it.
func (s *System) startFake(ctx context.Context, name string, args []string) (*testkit.Proc, string, *LLMProxy, error) {
	port := s.H.Port()
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p, err := s.H.start(testkit.ProcSpec{Name: s.Cfg.Name + "-" + name, Path: s.H.Bin("fakeopenai"), Env: testkit.ChildEnv(),
		Args: append([]string{"--addr", "127.0.0.1:" + strconv.Itoa(port)}, args...)})
	if err != nil {
		return nil, url, nil, err
	}
	if _, err := p.WaitReady(ctx, url+"/healthz", 15*time.Second, 50*time.Millisecond); err != nil {
		return p, url, nil, err
	}
	proxy, err := NewLLMProxy(url)
	return p, url, proxy, err
}

// Ctl runs careeropsctl against the system and returns its trimmed output.
func (s *System) Ctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.H.Bin("careeropsctl"), args...)
	cmd.Env = testkit.ChildEnv("DATABASE_URL="+s.DBURL, "RABBITMQ_URL="+s.AMQP, "JWT_SECRET="+JWTSecret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("careeropsctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// StartAPI starts an api on the system's port (the same after every restart) and waits
// until it answers /healthz.
func (s *System) StartAPI(ctx context.Context) error {
	addr := "127.0.0.1:" + strconv.Itoa(s.apiPort)
	p, err := s.H.start(testkit.ProcSpec{Name: fmt.Sprintf("%s-api-%d", s.Cfg.Name, len(s.apis)+1), Path: s.H.Bin("api"), Env: testkit.ChildEnv(
		"DATABASE_URL="+s.DBURL, "RABBITMQ_URL="+s.AMQP, "JWT_SECRET="+JWTSecret, "HTTP_ADDR="+addr,
		"SHUTDOWN_TIMEOUT=10s", "LOG_LEVEL=info",
		// The per-user limits are not under test here: the load comes from a few users.
		"USER_REQUESTS_PER_MINUTE=0", "USER_JOBS_PER_MINUTE=0", "USER_TOKENS_PER_DAY=0",
	)})
	if err != nil {
		return err
	}
	s.API, s.APIURL = p, "http://"+addr
	s.apis = append(s.apis, p)
	_, err = p.WaitReady(ctx, s.APIURL+"/healthz", 30*time.Second, 50*time.Millisecond)
	return err
}

// workerEnv is a worker's environment: short retry and reap intervals so that a scenario
// drains in seconds, overridden by SystemConfig.WorkerEnv.
func (s *System) workerEnv(id string) []string {
	env := map[string]string{
		"DATABASE_URL": s.DBURL, "RABBITMQ_URL": s.AMQP,
		"OPENAI_API_KEY": "sk-chaos-not-a-secret", "OPENAI_BASE_URL": s.Proxy.BaseURL(id), "OPENAI_MODEL": PrimaryModel,
		"ADMIN_ADDR": "127.0.0.1:0", "WORKER_CONCURRENCY": "6", "WORKER_MAX_ATTEMPTS": "5",
		"WORKER_RETRY_BASE_DELAY": "100ms", "WORKER_RETRY_MAX_DELAY": "1s", "WORKER_REAP_INTERVAL": "1s",
		"LLM_TIMEOUT": "10s", "WORKER_DRAIN_TIMEOUT": "10s", "LOG_LEVEL": "info",
	}
	if s.FallbackProxy != nil {
		for k, v := range map[string]string{
			"LLM_FALLBACK_BASE_URL": s.FallbackProxy.WorkerURL(id), "LLM_FALLBACK_API_KEY": "azure-chaos-not-a-secret",
			"LLM_FALLBACK_API_TYPE": "azure", "LLM_FALLBACK_MODEL": FallbackModel, "LLM_FALLBACK_DEPLOYMENT": "letters-fallback",
		} {
			env[k] = v
		}
	}
	if s.Cfg.SMTP != nil {
		// Every user's address is in one domain: no per-domain cap, it is not under test.
		for k, v := range map[string]string{
			"SMTP_HOST": s.Cfg.SMTP.Host, "SMTP_PORT": strconv.Itoa(s.Cfg.SMTP.Port), "SMTP_TLS": "none",
			"SMTP_TIMEOUT": "5s", "JWT_SECRET": JWTSecret, "PUBLIC_BASE_URL": "http://127.0.0.1:" + strconv.Itoa(s.apiPort),
			"EMAIL_PER_DOMAIN_PER_MINUTE": "0",
		} {
			env[k] = v
		}
	}
	for k, v := range s.Cfg.WorkerEnv {
		env[k] = v
	}
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return testkit.ChildEnv(out...)
}

// StartWorker starts one more worker.
func (s *System) StartWorker() (*WorkerProc, error) {
	s.mu.Lock()
	s.workerN++
	id := fmt.Sprintf("w%d", s.workerN)
	s.mu.Unlock()
	p, err := s.H.start(testkit.ProcSpec{Name: s.Cfg.Name + "-worker-" + id, Path: s.H.Bin("worker"), Env: s.workerEnv(id)})
	if err != nil {
		return nil, err
	}
	w := &WorkerProc{Proc: p, ID: id}
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	return w, nil
}

// Workers returns the workers still running.
func (s *System) Workers() []*WorkerProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*WorkerProc
	for _, w := range s.workers {
		if !w.Exited() {
			out = append(out, w)
		}
	}
	return out
}

// AllWorkers returns every worker started, running or not.
func (s *System) AllWorkers() []*WorkerProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*WorkerProc(nil), s.workers...)
}

// KillWorker kills w with SIGKILL and notes when.
func (s *System) KillWorker(w *WorkerProc) {
	s.mu.Lock()
	w.KilledAt = time.Now()
	s.mu.Unlock()
	_ = w.Signal(syscall.SIGKILL)
	_, _ = w.Wait(10 * time.Second)
}

// StopWorker stops w with SIGTERM, as a rolling restart does, and returns its exit code and
// whether it exited by itself within timeout.
func (s *System) StopWorker(w *WorkerProc, timeout time.Duration) (int, bool) {
	s.mu.Lock()
	w.Stopped = true
	s.mu.Unlock()
	return w.Stop(timeout)
}

// killedAt is when a worker was killed (zero if it was not).
func (s *System) killedAt(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		if w.ID == id {
			return w.KilledAt
		}
	}
	return time.Time{}
}

// Shutdown stops the api and the workers with SIGTERM, as an orchestrator would, and
// returns a problem for each that did not exit 0 within its drain time; then it stops
// fakeopenai and the proxy.
func (s *System) Shutdown(drain time.Duration) []string {
	var problems []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	stop := func(p *testkit.Proc) {
		defer wg.Done()
		t0 := time.Now()
		code, graceful := p.Stop(drain)
		mu.Lock()
		defer mu.Unlock()
		if !graceful || code != 0 {
			problems = append(problems, fmt.Sprintf("%s: SIGTERM → exit %d after %s (graceful=%v), want exit 0; see %s",
				p.Name, code, time.Since(t0).Round(time.Millisecond), graceful, p.Log))
		}
		took := time.Since(t0)
		s.stopTimes = append(s.stopTimes, fmt.Sprintf("%s=%.1fs", strings.TrimPrefix(p.Name, s.Cfg.Name+"-"), took.Seconds()))
		if took > 3*time.Second { // slow to stop: say what it was doing
			s.stopTimes = append(s.stopTimes, fmt.Sprintf("\n  %s took %s; its last lines:\n    %s", p.Name, took.Round(time.Millisecond),
				strings.Join(grepLog(p.Log, 8), "\n    ")))
		}
	}
	if s.API != nil && !s.API.Exited() {
		wg.Add(1)
		go stop(s.API)
	}
	for _, w := range s.Workers() {
		wg.Add(1)
		go stop(w.Proc)
	}
	wg.Wait()
	for _, fake := range []*testkit.Proc{s.Fake, s.FallbackFake} {
		if fake != nil {
			fake.Stop(10 * time.Second)
		}
	}
	for _, proxy := range []*LLMProxy{s.Proxy, s.FallbackProxy} {
		if proxy != nil {
			proxy.Close()
		}
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
	return problems
}

// StopTimes says how long each process took to stop with SIGTERM at Shutdown.
func (s *System) StopTimes() []string { return s.stopTimes }
