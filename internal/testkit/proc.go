package testkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcSpec describes a program to start.
type ProcSpec struct {
	Name string   // for logs and messages, e.g. "worker-3"
	Path string   // the program
	Args []string // its arguments
	Env  []string // its whole environment (see ChildEnv)
	Dir  string   // working directory; "" for this process's
	// Cred, if not nil, runs the process as another user (PostgreSQL refuses root).
	Cred *syscall.Credential
	// Log is the file that gets stdout and stderr, appended.
	Log string
}

// Proc is a started program: the leader of its own process group, killed with this process
// if that dies (Pdeathsig), so no run leaves a process behind.
type Proc struct {
	Name    string
	Log     string
	Started time.Time

	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu       sync.Mutex
	signaled []string // signals sent, for messages
}

// StartProc starts spec; a line naming the program and the time starts its log.
func StartProc(spec ProcSpec) (*Proc, error) {
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	defer logf.Close()
	if spec.Cred != nil {
		if err := os.Chown(spec.Log, int(spec.Cred.Uid), int(spec.Cred.Gid)); err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.Name, err)
		}
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env, cmd.Dir = spec.Env, spec.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: spec.Cred}
	fmt.Fprintf(logf, "=== start %s %v at %s\n", spec.Path, spec.Args, time.Now().Format(time.RFC3339Nano))
	p := &Proc{Name: spec.Name, Log: spec.Log, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
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
	p.noteSignal(sig.String())
	if err := syscall.Kill(p.Pid(), sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

func (p *Proc) noteSignal(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signaled = append(p.signaled, s)
}

// KillGroup sends SIGKILL to the whole process group and waits (up to 10 s) for the process
// to end.
func (p *Proc) KillGroup() {
	if !p.Exited() {
		p.noteSignal("SIGKILL(group)")
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL) // it may have just ended
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Wait waits up to timeout for the process to end and returns its exit code (-1 if a signal
// ended it), or an error if it is still running.
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
	_ = p.Signal(syscall.SIGTERM) // it may have just ended: Wait tells
	if code, err := p.Wait(timeout); err == nil {
		return code, true
	}
	p.KillGroup()
	return p.ExitCode(), false
}

// StopCleanly is Stop as an error: nil only if the process exited 0 within timeout.
func (p *Proc) StopCleanly(timeout time.Duration) error {
	code, graceful := p.Stop(timeout)
	switch {
	case !graceful:
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.Name, timeout)
	case code != 0:
		return fmt.Errorf("%s exited with %d; see %s", p.Name, code, p.Log)
	}
	return nil
}

// WaitReady asks url every interval until it answers 200 and returns the time since the
// process started (start to ready); an error if the process exits first or timeout passes.
func (p *Proc) WaitReady(ctx context.Context, url string, timeout, interval time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	var took time.Duration
	err := WaitUntil(ctx, timeout, interval, func() bool {
		if answers200(ctx, client, url) {
			took = time.Since(p.Started)
			return true
		}
		return p.Exited()
	})
	switch {
	case took > 0:
		return took, nil
	case p.Exited():
		return 0, fmt.Errorf("%s exited with %d during start-up; see %s", p.Name, p.ExitCode(), p.Log)
	default:
		return 0, fmt.Errorf("%s: %s not 200 within %s (%w); see %s", p.Name, url, timeout, err, p.Log)
	}
}

// answers200 reports whether a GET of url answers 200.
func answers200(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (p *Proc) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s (pid %d, log %s, signals %v)", p.Name, p.Pid(), p.Log, p.signaled)
}

// Build runs `go build flags -o outDir/ pkgs...` in dir (a module root, or a directory of it).
func Build(ctx context.Context, dir, outDir string, flags []string, pkgs ...string) error {
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", strings.TrimRight(outDir, "/")+"/")
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
