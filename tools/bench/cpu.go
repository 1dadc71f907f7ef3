package bench

import (
	"os"
	"sort"
	"strings"
	"time"
)

// cpuSnap is the CPU time used so far by each process of each component, and by the machine.
type cpuSnap struct {
	at      time.Time
	byName  map[string]map[int]time.Duration
	busy    time.Duration
	machine time.Duration
}

// component is a named group of processes whose CPU time is counted together.
type component struct {
	name string
	pids []int
	// pidsFn, if set, lists the pids at each snapshot instead (processes that come and go:
	// PostgreSQL backends).
	pidsFn func() []int
	tree   bool // count children too (servers that fork: RabbitMQ)
}

func snapCPU(comps []component) cpuSnap {
	s := cpuSnap{at: time.Now(), byName: map[string]map[int]time.Duration{}}
	for _, c := range comps {
		m := map[int]time.Duration{}
		pids := c.pids
		if c.pidsFn != nil {
			pids = c.pidsFn()
		}
		for _, pid := range pids {
			if pid <= 0 {
				continue
			}
			if c.tree {
				m[pid] = treeCPU(pid)
			} else if st, err := readProcStat(pid); err == nil {
				m[pid] = st.cpu
			}
		}
		s.byName[c.name] = m
	}
	s.busy, s.machine = machineCPU()
	return s
}

// CPUUse is the CPU used between two snapshots.
type CPUUse struct {
	Wall time.Duration `json:"wall"`
	// ByComponent is the CPU time each component used.
	ByComponent map[string]time.Duration `json:"byComponent"`
	// Busy is the machine's busy time over all cores; Cores how many cores the machine has.
	Busy  time.Duration `json:"busy"`
	Cores float64       `json:"cores"`
}

func cpuBetween(a, b cpuSnap) CPUUse {
	u := CPUUse{Wall: b.at.Sub(a.at), ByComponent: map[string]time.Duration{}, Busy: b.busy - a.busy}
	for k, pids := range b.byName {
		var sum time.Duration
		for pid, v := range pids {
			sum += max(v-a.byName[k][pid], 0) // a process new in b counts from its start
		}
		u.ByComponent[k] = sum
	}
	if u.Wall > 0 {
		u.Cores = float64(b.machine-a.machine) / float64(u.Wall)
	}
	return u
}

// BusyPct is the machine's utilisation over the interval, 0–100.
func (u CPUUse) BusyPct() float64 {
	if u.Wall <= 0 || u.Cores <= 0 {
		return 0
	}
	return 100 * float64(u.Busy) / (float64(u.Wall) * u.Cores)
}

// Other is the busy time no measured component accounts for (other tenants of the machine,
// the kernel's own work).
func (u CPUUse) Other() time.Duration {
	o := u.Busy
	for _, v := range u.ByComponent {
		o -= v
	}
	return max(o, 0)
}

// perOp formats each component's CPU per operation, in ms, largest first.
func (u CPUUse) perOp(n int) string {
	if n <= 0 {
		return ""
	}
	names := make([]string, 0, len(u.ByComponent)+1)
	for k := range u.ByComponent {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return u.ByComponent[names[i]] > u.ByComponent[names[j]] })
	parts := make([]string, 0, len(names)+2)
	for _, k := range names {
		parts = append(parts, k+"="+ms(u.ByComponent[k]/time.Duration(n)))
	}
	parts = append(parts, "other="+ms(u.Other()/time.Duration(n)))
	return "cpu_ms/op{" + strings.Join(parts, " ") + "}"
}

// self is the bench's own pid.
var self = os.Getpid()
