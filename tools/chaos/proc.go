package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

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

// startAndWait starts spec and asks probe every interval until it answers nil; an error if the
// process exits first or within passes. The process is returned even then, to be stopped.
func (h *Harness) startAndWait(ctx context.Context, spec testkit.ProcSpec, within, interval time.Duration, probe func() error) (*testkit.Proc, error) {
	p, err := h.start(spec)
	if err != nil {
		return nil, err
	}
	_ = testkit.WaitUntil(ctx, within, interval, func() bool {
		err = probe()
		return err == nil || p.Exited()
	}) // err and p say how it ended
	switch {
	case err == nil:
		return p, nil
	case p.Exited():
		return p, fmt.Errorf("%s exited with %d; see %s", spec.Name, p.ExitCode(), p.Log)
	default:
		return p, fmt.Errorf("%s not answering after %s: %w; see %s", spec.Name, within, err, p.Log)
	}
}

// server is a process the suite starts, stops and starts again: the private PostgreSQL or
// RabbitMQ. proc is its current process, nil before the first start.
type server struct {
	h    *Harness
	proc *testkit.Proc
}

// start starts spec and waits until probe answers, as startAndWait does; the process is kept
// even when it does not answer, to be stopped.
func (s *server) start(ctx context.Context, spec testkit.ProcSpec, within, interval time.Duration, probe func() error) error {
	p, err := s.h.startAndWait(ctx, spec, within, interval, probe)
	if p != nil {
		s.proc = p
	}
	return err
}

// Running reports whether the server's process runs.
func (s *server) Running() bool { return s.proc != nil && !s.proc.Exited() }

// stop asks a running server to stop (ask) and waits up to 60 s for its process to exit.
func (s *server) stop(ask func() error) error {
	if !s.Running() {
		return nil
	}
	if err := ask(); err != nil {
		return err
	}
	_, err := s.proc.Wait(60 * time.Second)
	return err
}

// end is the final cleanup of a running server: ask it to stop, wait up to within, and kill
// its process group if either fails.
func (s *server) end(ask func() error, within time.Duration) {
	if !s.Running() {
		return
	}
	err := ask()
	if err == nil {
		_, err = s.proc.Wait(within)
	}
	if err != nil {
		s.proc.KillGroup()
	}
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
