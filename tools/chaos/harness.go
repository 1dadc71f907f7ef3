// Package chaos is the fault suite (`make chaos`): it runs the real programs (api,
// workers, fakeopenai) as processes against a private PostgreSQL and a private RabbitMQ node
// that it starts, kills and restarts itself, drives them with tools/loadgen, breaks things
// on purpose, and then checks from the database, the api and the queues that every accepted
// job ended exactly once. See docs/operations.md, "Fault suite".
//
// The tests run only with CAREEROPS_CHAOS=1 (scripts/chaos.sh sets it), so `make test` skips
// them. The harness in this package's non-test files (private services, processes, the
// counting LLM proxy, the end check) is meant for reuse by benchmarks.
package chaos

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/careerops/jobs/internal/testkit"
)

// Harness owns a run's temporary directory, the built programs, the private PostgreSQL and
// RabbitMQ, and every process started: Close ends them all.
type Harness struct {
	Root   string // temporary directory of the run (kept if the run failed)
	LogDir string // every process's log
	BinDir string // api, worker, fakeopenai, careeropsctl

	Postgres *Postgres
	RabbitMQ *RabbitMQ

	mu      sync.Mutex
	procs   []*testkit.Proc
	pidFile *os.File
	ports   []int
	logf    func(format string, args ...any)
}

// Options configure a Harness.
type Options struct {
	// Dir is the parent of the run's directory; "" for os.TempDir(). scripts/chaos.sh sets
	// CHAOS_DIR.
	Dir string
	// BuildFlags go to `go build` of the programs, e.g. "-race".
	BuildFlags []string
	// ModuleRoot is where `go build ./cmd/...` runs.
	ModuleRoot string
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// NewHarness builds the programs and starts PostgreSQL and RabbitMQ. On error, what was
// started is already stopped.
func NewHarness(ctx context.Context, o Options) (h *Harness, err error) {
	root, err := os.MkdirTemp(o.Dir, "chaos-")
	if err != nil {
		return nil, err
	}
	// The PostgreSQL server runs as the postgres user and must reach its data directory.
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	h = &Harness{Root: root, LogDir: filepath.Join(root, "logs"), BinDir: filepath.Join(root, "bin"), logf: o.Logf}
	if h.logf == nil {
		h.logf = func(string, ...any) {}
	}
	defer func() {
		if err != nil {
			h.Close(false)
		}
	}()
	for _, d := range []string{h.LogDir, h.BinDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return h, err
		}
	}
	if err := os.Chmod(h.LogDir, 0o777); err != nil {
		return h, err
	}
	if h.pidFile, err = os.Create(filepath.Join(root, "pids")); err != nil {
		return h, err
	}
	if err := h.allocatePorts(40); err != nil {
		return h, err
	}

	start := time.Now()
	if err := testkit.Build(ctx, o.ModuleRoot, h.BinDir, o.BuildFlags, "./cmd/api", "./cmd/worker", "./cmd/fakeopenai", "./cmd/careeropsctl"); err != nil {
		return h, err
	}
	h.logf("chaos: built the programs in %.1fs (go build %s)", time.Since(start).Seconds(), strings.Join(o.BuildFlags, " "))

	start = time.Now()
	if h.Postgres, err = startPostgres(ctx, h); err != nil {
		return h, fmt.Errorf("postgres: %w", err)
	}
	h.logf("chaos: PostgreSQL up on 127.0.0.1:%d in %.1fs", h.Postgres.Port, time.Since(start).Seconds())
	start = time.Now()
	if h.RabbitMQ, err = startRabbitMQ(ctx, h); err != nil {
		return h, fmt.Errorf("rabbitmq: %w", err)
	}
	h.logf("chaos: RabbitMQ node %s up on 127.0.0.1:%d in %.1fs", h.RabbitMQ.Node, h.RabbitMQ.Port, time.Since(start).Seconds())
	return h, nil
}

// Close stops everything; it removes the run's directory unless keep.
func (h *Harness) Close(keep bool) {
	if h.RabbitMQ != nil {
		h.RabbitMQ.shutdown()
	}
	if h.Postgres != nil {
		h.Postgres.shutdown()
	}
	h.killAll()
	if h.pidFile != nil {
		_ = h.pidFile.Close()
	}
	if !keep {
		_ = os.RemoveAll(h.Root)
	}
}

// Port hands out one of the run's reserved ports.
func (h *Harness) Port() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ports) == 0 {
		panic("chaos: out of reserved ports")
	}
	p := h.ports[0]
	h.ports = h.ports[1:]
	return p
}

// PortRange hands out n consecutive reserved ports and returns the first.
func (h *Harness) PortRange(n int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := 0; i+n <= len(h.ports); i++ {
		if h.ports[i+n-1] == h.ports[i]+n-1 {
			first := h.ports[i]
			h.ports = append(h.ports[:i:i], h.ports[i+n:]...)
			return first
		}
	}
	panic("chaos: no reserved port range that long")
}

// allocatePorts reserves n consecutive free ports outside the kernel's ephemeral range, so
// that no outgoing connection takes one of them while a server is down (RabbitMQ and the api
// are restarted on the same port).
func (h *Harness) allocatePorts(n int) error {
	low, high := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			low, _ = strconv.Atoi(f[0])
			high, _ = strconv.Atoi(f[1])
		}
	}
	lo, hi := 10000, low-n-1 // below the ephemeral range if there is room
	if hi-lo < 1000 {
		lo, hi = high+1, 65535-n
	}
	for range 100 {
		r, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)))
		if err != nil {
			return err
		}
		base := lo + int(r.Int64())
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			_ = ln.Close()
		}
		if ok {
			for p := base; p < base+n; p++ {
				h.ports = append(h.ports, p)
			}
			return nil
		}
	}
	return fmt.Errorf("no %d free consecutive ports in %d..%d", n, lo, hi)
}

// Bin is the path of a built program.
func (h *Harness) Bin(name string) string { return filepath.Join(h.BinDir, name) }

// logTime is the time of a program's JSON log line (zero if it has none).
func logTime(line string) time.Time {
	var l struct{ Time time.Time }
	_ = json.Unmarshal([]byte(line), &l) // a line that is not JSON has no time
	return l.Time
}

// grepLog returns the last limit lines of a log file that contain every one of words.
func grepLog(path string, limit int, words ...string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		all := true
		for _, w := range words {
			if !strings.Contains(line, w) {
				all = false
				break
			}
		}
		if all {
			if len(out) == limit {
				out = out[1:]
			}
			out = append(out, line)
		}
	}
	return out
}
