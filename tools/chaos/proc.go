package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ProcSpec describes a process to start.
type ProcSpec struct {
	Name string   // for logs and the pid file, e.g. "worker-3"
	Path string   // the program
	Args []string // its arguments
	Env  []string // its whole environment
	Dir  string   // working directory; "" for the harness root
	// Cred, if not nil, runs the process as another user (PostgreSQL refuses root).
	Cred *syscall.Credential
	// Log is the file that gets stdout and stderr, appended; "" for <root>/logs/<Name>.log.
	Log string
}

// Proc is a started process: the leader of its own process group, killed with the test
// process if that dies (Pdeathsig), and recorded in the pid file so that scripts/chaos.sh can
// kill it if even that fails.
type Proc struct {
	Name    string
	Log     string
	Started time.Time

	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu       sync.Mutex
	signaled []string // signals we sent, for error messages
}

// start runs spec and registers the process with h.
func (h *Harness) start(spec ProcSpec) (*Proc, error) {
	if spec.Log == "" {
		spec.Log = filepath.Join(h.LogDir, spec.Name+".log")
	}
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if spec.Cred != nil {
		_ = os.Chown(spec.Log, int(spec.Cred.Uid), int(spec.Cred.Gid))
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = h.Root
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: spec.Cred}
	fmt.Fprintf(logf, "=== chaos: start %s %v at %s\n", spec.Path, spec.Args, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, Log: spec.Log, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	h.register(p)
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s already exited", p.Name)
	}
	p.mu.Lock()
	p.signaled = append(p.signaled, sig.String())
	p.mu.Unlock()
	return syscall.Kill(p.Pid(), sig)
}

// KillGroup sends SIGKILL to the whole process group and waits for the process to end.
func (p *Proc) KillGroup() {
	if !p.Exited() {
		p.mu.Lock()
		p.signaled = append(p.signaled, "SIGKILL(group)")
		p.mu.Unlock()
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Wait waits up to timeout for the process to end and returns its exit code (-1 if a signal
// ended it) or an error if it is still running.
func (p *Proc) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s (pid %d) still running after %s", p.Name, p.Pid(), timeout)
	}
	return p.ExitCode(), nil
}

// ExitCode is the exit code of an ended process, -1 if a signal ended it.
func (p *Proc) ExitCode() int {
	var ee *exec.ExitError
	if p.err == nil {
		return 0
	}
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Stop sends SIGTERM and waits up to timeout; then kills the group. It returns the exit code
// and whether the process ended by itself within timeout.
func (p *Proc) Stop(timeout time.Duration) (code int, graceful bool) {
	if p.Exited() {
		return p.ExitCode(), true
	}
	_ = p.Signal(syscall.SIGTERM)
	if code, err := p.Wait(timeout); err == nil {
		return code, true
	}
	p.KillGroup()
	return p.ExitCode(), false
}

func (p *Proc) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s (pid %d, log %s, signals %v)", p.Name, p.Pid(), p.Log, p.signaled)
}

// register records p for the final cleanup and in the pid file.
func (h *Harness) register(p *Proc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs = append(h.procs, p)
	if h.pidFile != nil {
		fmt.Fprintf(h.pidFile, "%d %s\n", p.Pid(), p.Name)
		_ = h.pidFile.Sync()
	}
}

// killAll ends every process still running: the last resort of the cleanup.
func (h *Harness) killAll() {
	h.mu.Lock()
	procs := append([]*Proc(nil), h.procs...)
	h.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].KillGroup()
	}
}
