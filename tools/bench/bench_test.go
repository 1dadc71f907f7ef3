package bench

import (
	"fmt"
	"io"
	"math"
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
		API: []APIResult{{Concurrency: 32, PerSec: 500, RatioRaw: 0.5, Latency: Dist{P99: 50 * time.Millisecond}, TotalSent: 10},
			{Concurrency: 128, PerSec: 600}},
		OneUser: &APIResult{Concurrency: 32, Users: 1, PerSec: 320},
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
	check("API at c=128 no worse than at c=32 (ops/s)", true, "1.20× the target")
	check("API one user alone at c=32 within 20 % of many users (ops/s)", false, "0.80× the target")
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

func TestRiverFiguresPairTheSameRuns(t *testing.T) {
	cpu := func(api, worker, pg, mq time.Duration) CPUUse {
		return CPUUse{ByComponent: map[string]time.Duration{"api": api, "worker": worker, "postgres": pg, "rabbitmq": mq, "bench": time.Hour, "fakeopenai": time.Hour}}
	}
	spec := func(lat time.Duration, w, c int, peer string) E2ESpec {
		return E2ESpec{Name: fmt.Sprintf("%s %dx%d", latName(lat), w, c), Latency: lat, Workers: w, Conc: c, Peer: peer}
	}
	r := &Results{
		API: []APIResult{
			{Concurrency: 32, Experiment: "synchronous_commit=off", PerSec: 9999, Accepted: 1},
			{Concurrency: 32, PerSec: 2000, Accepted: 1000, Latency: Dist{P99: 30 * time.Millisecond}, CPU: cpu(400*time.Millisecond, 0, 400*time.Millisecond, 200*time.Millisecond)},
		},
		RiverAPI: []APIResult{
			{Concurrency: 32, Peer: "river", PerSec: 2010, Accepted: 1000, Latency: Dist{P99: 25 * time.Millisecond}, CPU: cpu(300*time.Millisecond, 0, 600*time.Millisecond, 500*time.Millisecond)},
			{Concurrency: 128, Peer: "river", PerSec: 1, Accepted: 1}, // ours not run at 128: no pair
		},
		E2E: []E2EResult{
			{Spec: spec(time.Second, 1, 8, ""), JobsPerSec: 1},
			{Spec: spec(time.Second, 1, 32, ""), JobsPerSec: 31.8, Completed: 100, CPU: cpu(100*time.Millisecond, 300*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond)},
		},
		RiverE2E: []E2EResult{
			{Spec: spec(time.Second, 1, 32, "river"), JobsPerSec: 32.0, Completed: 100, CPU: cpu(50*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond, 0)},
			{Spec: spec(0, 4, 8, "river"), JobsPerSec: 300, Completed: 1000, CPU: cpu(100*time.Millisecond, 500*time.Millisecond, 400*time.Millisecond, 0)},
		},
		AtRiverRate: []E2EResult{ // ours at 4x8 saturated was not run: the equal-load figure stands alone
			{Spec: E2ESpec{Name: "0s 4x8 @River's rate", Workers: 4, Conc: 8, Rate: 300}, Completed: 1000,
				CPU: cpu(100*time.Millisecond, 400*time.Millisecond, 300*time.Millisecond, 100*time.Millisecond)},
		},
	}
	got := r.RiverFigures()
	want := []RiverFigure{
		{Run: "enqueue c=32", Figure: "ops/s", Ours: 2000, River: 2010, HigherBetter: true, Met: true}, // within 1 %
		{Run: "enqueue c=32", Figure: "p99 ms", Ours: 30, River: 25, Met: false},
		{Run: "enqueue c=32", Figure: "CPU ms/op", Ours: 1.0, River: 0.9, Met: false}, // RabbitMQ counts for ours only
		{Run: "e2e " + spec(time.Second, 1, 32, "").Name, Figure: "jobs/s", Ours: 31.8, River: 32.0, HigherBetter: true, Met: true},
		{Run: "e2e " + spec(time.Second, 1, 32, "").Name, Figure: "CPU ms/job", Ours: 7, River: 6.5, Met: false},
		{Run: "e2e 0s 4x8 @River's rate", Figure: "CPU ms/job", Ours: 0.9, River: 1.0, Met: true, EqualLoad: true},
	}
	if len(got) != len(want) {
		t.Fatalf("RiverFigures = %+v, want %d figures", got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Run != w.Run || g.Figure != w.Figure || g.HigherBetter != w.HigherBetter || g.Met != w.Met || g.EqualLoad != w.EqualLoad ||
			math.Abs(g.Ours-w.Ours) > 1e-9 || math.Abs(g.River-w.River) > 1e-9 {
			t.Errorf("figure %d = %+v, want %+v", i, g, w)
		}
	}
	tg := riverTarget(got)
	if tg.Met || tg.Measured != "2 of 5 figures; River ahead on enqueue c=32 p99 ms, enqueue c=32 CPU ms/op, e2e 1s 1x32 CPU ms/job" { // equal load not counted
		t.Errorf("riverTarget = %+v", tg)
	}
	if tg := riverTarget(got[:1]); !tg.Met || tg.Measured != "1 of 1 figures" {
		t.Errorf("riverTarget of one met figure = %+v", tg)
	}
}

func TestNewRiverFigureTolerance(t *testing.T) {
	for _, tt := range []struct {
		ours, river  float64
		higherBetter bool
		met          bool
	}{
		{100, 100, true, true},
		{99, 100, true, true},    // 1 % below: the window's edge
		{98.9, 100, true, false}, // beyond it
		{10, 10, false, true},
		{10.01, 10, false, false}, // lower-is-better figures have no tolerance
	} {
		if f := newRiverFigure("r", "f", tt.ours, tt.river, tt.higherBetter); f.Met != tt.met {
			t.Errorf("newRiverFigure(%v, %v, %v).Met = %v, want %v", tt.ours, tt.river, tt.higherBetter, f.Met, tt.met)
		}
	}
}

func TestMarkdownShowsRiverBesideOurs(t *testing.T) {
	spec := E2ESpec{Name: "0s 1x32", Workers: 1, Conc: 32}
	river := spec
	river.Peer = "river"
	r := &Results{
		API:      []APIResult{{Concurrency: 32, PerSec: 2000, Accepted: 100}},
		RiverAPI: []APIResult{{Concurrency: 32, PerSec: 1900, Accepted: 100, Peer: "river"}},
		E2E:      []E2EResult{{Spec: spec, JobsPerSec: 300, Completed: 10}},
		RiverE2E: []E2EResult{{Spec: river, JobsPerSec: 250, Completed: 10}},
		Footprint: Footprint{BinarySizes: map[string]int64{"riverpeer": 30e6},
			RiverAPI: &ProgFootprint{IdleRSS: []int64{20e6}}, RiverWorker: &ProgFootprint{IdleRSS: []int64{21e6}}},
	}
	md := r.Markdown()
	for _, want := range []string{
		"#### Side by side with River",
		"| River peer POST /api/cover-letter | 32 | 1900 |",
		"| 0s | 1 × 32 River | 250 |",
		"| enqueue c=32 | ops/s | 2000 | 1900 | 1.05 | yes |",
		"| e2e 0s 1x32 | jobs/s | 300 | 250 | 1.20 | yes |",
		"| riverpeer worker (River) | 30.0 | 21.0 / 21.0 |",
		"| at or above River on each figure | 5 of 5 figures | met |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the page lacks %q:\n%s", want, md)
		}
	}
	if md := (&Results{API: r.API}).Markdown(); strings.Contains(md, "River") {
		t.Errorf("a run without the river phase mentions River:\n%s", md)
	}
}

func TestSlowestKeepsTheSlowestPercentsTimings(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		lat     []time.Duration
		timings []string
		want    []string
	}{
		{"one of a few", []time.Duration{ms(2), ms(9), ms(3)}, []string{"a", "b", "c"}, []string{"9.00 ms: b"}},
		{"none without timings", []time.Duration{ms(2), ms(9)}, []string{"", ""}, nil},
		{"nothing", nil, nil, nil},
	}
	for _, tt := range tests {
		if got := slowest(tt.lat, tt.timings); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	lat, timings := make([]time.Duration, 300), make([]string, 300)
	for i := range lat {
		lat[i], timings[i] = ms(i), fmt.Sprint(i)
	}
	if got := slowest(lat, timings); fmt.Sprint(got) != "[299 ms: 299 298 ms: 298 297 ms: 297]" {
		t.Errorf("1 %% of 300: %q", got)
	}
}

func TestE2ERunSelection(t *testing.T) {
	for _, tc := range []struct {
		env           map[string]string
		name          string
		workers, conc int
		run, profile  bool
	}{
		{map[string]string{}, "0s 1x8", 1, 8, true, false},
		{map[string]string{"BENCH_PROFILE": "1"}, "0s 1x32", 1, 32, true, true},
		{map[string]string{"BENCH_PROFILE": "1"}, "0s 4x8", 4, 8, true, false},
		{map[string]string{"BENCH_E2E": "0s 4x8, 1s 1x8"}, "0s 4x8", 4, 8, true, false},
		{map[string]string{"BENCH_E2E": "0s 4x8, 1s 1x8"}, "1s 1x8", 1, 8, true, false},
		{map[string]string{"BENCH_E2E": "0s 4x8, 1s 1x8", "BENCH_PROFILE": "1"}, "0s 4x8", 4, 8, true, true},
		{map[string]string{"BENCH_E2E": "0s 4x8", "BENCH_PROFILE": "1"}, "0s 1x32", 1, 32, false, false},
	} {
		c := FromEnv(func(k string) string { return tc.env[k] }, io.Discard, io.Discard)
		run, profile := c.e2eRun(tc.name, tc.workers, tc.conc)
		if run != tc.run || profile != tc.profile {
			t.Errorf("%v: e2eRun(%q) = %v, %v; want %v, %v", tc.env, tc.name, run, profile, tc.run, tc.profile)
		}
	}
}

// A figure the run did not measure (a scale-only run samples no worker at idle, nor any
// process under load) reads "–", not 0.0 MB.
func TestFootprintRowLeavesUnmeasuredFiguresBlank(t *testing.T) {
	for _, c := range []struct {
		name   string
		idle   []int64
		maxRSS int64
		ready  []time.Duration
		want   string
	}{
		{"measured", []int64{26e6, 27e6}, 40e6, []time.Duration{30 * time.Millisecond, 50 * time.Millisecond},
			"| worker | 35.0 | 26.0 / 27.0 | 40.0 | 30.0 / 50.0 (2) |"},
		{"no idle sample, no load", nil, 0, []time.Duration{50 * time.Millisecond},
			"| worker | 35.0 | – | – | 50.0 / 50.0 (1) |"},
		{"never started", nil, 0, nil, "| worker | 35.0 | – | – | – |"},
	} {
		if got := footprintRow("worker", 35e6, c.idle, c.maxRSS, c.ready); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
