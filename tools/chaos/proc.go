package chaos

import (
	"fmt"
	"path/filepath"

	"github.com/careerops/jobs/internal/testkit"
)

// start runs spec (its log <root>/logs/<Name>.log and its directory the harness root unless
// set) and registers the process with h: recorded in the pid file, so that scripts/chaos.sh
// can kill it if even Pdeathsig fails, and ended by the final cleanup.
func (h *Harness) start(spec testkit.ProcSpec) (*testkit.Proc, error) {
	if spec.Log == "" {
		spec.Log = filepath.Join(h.LogDir, spec.Name+".log")
	}
	if spec.Dir == "" {
		spec.Dir = h.Root
	}
	p, err := testkit.StartProc(spec)
	if err != nil {
		return nil, err
	}
	h.register(p)
	return p, nil
}

// register records p for the final cleanup and in the pid file.
func (h *Harness) register(p *testkit.Proc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs = append(h.procs, p)
	if h.pidFile != nil {
		fmt.Fprintf(h.pidFile, "%d %s\n", p.Pid(), p.Name)
		_ = h.pidFile.Sync() // the pid file is a last resort; the line is written
	}
}

// killAll ends every process still running: the last resort of the cleanup.
func (h *Harness) killAll() {
	h.mu.Lock()
	procs := append([]*testkit.Proc(nil), h.procs...)
	h.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].KillGroup()
	}
}
