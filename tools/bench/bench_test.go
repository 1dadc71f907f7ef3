package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The bench itself needs PostgreSQL, RabbitMQ and minutes (`make bench`); these tests only
// check its arithmetic and its reading of /proc, in milliseconds.

func TestQuantileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 0.999: 100 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := Quantile(ds, q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Quantile sorted its input")
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("Quantile of nothing is not 0")
	}
	d := Summarise(ds)
	if d.N != 100 || d.Mean != 50500*time.Microsecond || d.Max != 100*time.Millisecond || d.P50 != 50*time.Millisecond {
		t.Errorf("Summarise = %+v", d)
	}
}

func TestTargetsSayByHowMuch(t *testing.T) {
	r := &Results{
		Raw: []RawResult{{Mode: rawFull, OpsPerSec: 1000}},
		API: []APIResult{{Concurrency: 32, PerSec: 500, RatioRaw: 0.5, Latency: Dist{P99: 50 * time.Millisecond}, TotalSent: 10}},
		E2E: []E2EResult{
			{Spec: E2ESpec{Name: "1s 1x8", Latency: time.Second, Workers: 1, Conc: 8}, Efficiency: 0.95},
			{Spec: E2ESpec{Name: "1s 4x32", Latency: time.Second, Workers: 4, Conc: 32}, Efficiency: 0.45},
		},
		Footprint: Footprint{APIIdleRSS: []int64{20e6}, WorkerReady: []time.Duration{2 * time.Second}},
	}
	got := map[string]Target{}
	for _, tg := range r.Targets() {
		got[tg.What] = tg
	}
	check := func(what string, met bool, by string) {
		t.Helper()
		tg, ok := got[what]
		if !ok {
			t.Fatalf("no target %q in %v", what, got)
		}
		if tg.Met != met || tg.By != by {
			t.Errorf("%s: met=%v by=%q, want met=%v by=%q (%s)", what, tg.Met, tg.By, met, by, tg.Measured)
		}
	}
	check("API enqueue ≥ 1.0× raw limit (c=32)", false, "0.50× the target")
	check("API p99 ≤ 25 ms (c=32)", false, "2.00× the limit")
	check("API no errors (c=32)", true, "")
	check("scaling efficiency ≥ 0.9 at 1 s, every combination", false, "0.50× the target")
	check("idle RSS ≤ 30 MB (api)", true, "0.67× the limit")
	check("start → ready ≤ 1 s (worker)", false, "2.00× the limit")
	if !strings.Contains(got["scaling efficiency ≥ 0.9 at 1 s, every combination"].Measured, "1s 4x32") {
		t.Error("the worst combination is not named")
	}
	if md := r.Markdown(); !strings.Contains(md, "| api POST /api/cover-letter | 32 | 500 |") {
		t.Errorf("markdown lacks the api row:\n%s", md)
	}
}

func TestProcReadings(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	st, err := readProcStat(os.Getpid())
	if err != nil || st.ppid != os.Getppid() {
		t.Fatalf("readProcStat = %+v, %v; want ppid %d", st, err, os.Getppid())
	}
	if rss, err := rssBytes(os.Getpid()); err != nil || rss < 1<<20 {
		t.Fatalf("rssBytes = %d, %v", rss, err)
	}
	busy, total := machineCPU()
	if total <= 0 || busy < 0 || busy > total {
		t.Fatalf("machineCPU = %v of %v", busy, total)
	}
	a := snapCPU([]component{{name: "self", pids: []int{os.Getpid()}}})
	n := 0
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); n++ { // burn CPU
		_ = n * n
	}
	u := cpuBetween(a, snapCPU([]component{{name: "self", pids: []int{os.Getpid()}}}))
	if u.ByComponent["self"] <= 0 || u.Wall < 200*time.Millisecond {
		t.Fatalf("cpuBetween = %+v", u)
	}
}

func TestPlanSummaryTakesTheCostliestStatement(t *testing.T) {
	log := "duration: 0.060 ms  plan:\nQuery Text: SELECT true FROM users\nLockRows  (cost=0.28..8.30 rows=1 width=7) (actual time=0.059..0.060 rows=1 loops=1)\n" +
		"duration: 1.250 ms  plan:\nQuery Text: SELECT count(*)\n\tFROM cover_letter_jobs\nAggregate  (cost=1.0..2.0 rows=1 width=8)\n  ->  Index Scan using x on cover_letter_jobs  (cost=0.4..1.0 rows=1 width=8)\n" +
		"duration: 0.300 ms  plan:\nQuery Text: INSERT\nInsert on cover_letter_jobs  (cost=0.00..0.01 rows=1 width=1)\n"
	if got, want := planSummary(log), "Aggregate, 1.250 ms"; got != want {
		t.Fatalf("planSummary = %q, want %q", got, want)
	}
	if got := planSummary("no plans here"); got != "?" {
		t.Fatalf("planSummary of nothing = %q", got)
	}
}

func TestDrainQuarters(t *testing.T) {
	var samples []BurstSample
	for i := range 21 { // 10 s of enqueue, then 1000 messages drained at 100/s
		at := time.Duration(i) * time.Second
		q := 1000
		if i > 10 {
			q = max(0, 1000-100*(i-10))
		}
		samples = append(samples, BurstSample{At: at, Open: int64(q)})
	}
	first, last := drainQuarters(samples, 10*time.Second)
	if first != 100 || last != 100 {
		t.Fatalf("drainQuarters = %v, %v; want 100, 100", first, last)
	}
}
