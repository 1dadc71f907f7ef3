package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/careerops/jobs/internal/testkit"
)

// startProc starts path with args and env (the whole environment), its output appended to
// logDir/name.log: the leader of its own process group, killed with the bench if the bench
// dies, so no run leaves a process behind.
func startProc(name, path string, args, env []string, logDir string) (*testkit.Proc, error) {
	return testkit.StartProc(testkit.ProcSpec{Name: name, Path: path, Args: args, Env: env, Log: filepath.Join(logDir, name+".log")})
}

// rssBytes is a process's resident set (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// clockTick is USER_HZ: /proc reports CPU time in these units (100 on Linux).
const clockTick = 10 * time.Millisecond

// procStat is what the bench reads from /proc/PID/stat.
type procStat struct {
	ppid           int
	cpu            time.Duration // utime + stime
	reapedChildren time.Duration // cutime + cstime: children that exited and were waited for
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("pid %d: odd stat", pid)
	}
	// Fields after the command: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("pid %d: short stat", pid)
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return procStat{
		ppid:           int(num(4)),
		cpu:            time.Duration(num(14)+num(15)) * clockTick,
		reapedChildren: time.Duration(num(16)+num(17)) * clockTick,
	}, nil
}

// treeCPU is the CPU time used so far by pid and its children, including children that have
// already exited (their time is in pid's cutime/cstime once reaped).
func treeCPU(pid int) time.Duration {
	root, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	total := root.cpu + root.reapedChildren
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if st, err := readProcStat(child); err == nil && st.ppid == pid {
			total += st.cpu
		}
	}
	return total
}

// machineCPU reads /proc/stat: busy and total time summed over every CPU.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for k, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if k >= 8 { // guest time is already counted in user
			break
		}
		sum += n
		if k == 3 || k == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick
}
