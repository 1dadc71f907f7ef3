package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Target is one of the targets and how this run did against it.
type Target struct {
	What     string
	Measured string
	Met      bool
	// By is how far from the limit: the measured value ÷ the limit (≥ 1 is better for
	// "at least" targets, ≤ 1 for "at most" ones).
	By string
}

// Targets evaluates the targets against r.
func (r *Results) Targets() []Target {
	ts := r.apiTargets()
	atLeast := func(what string, got, limit float64, measured string) {
		ts = append(ts, targetAtLeast(what, got, limit, measured))
	}
	atMost := func(what string, got, limit float64, measured string) {
		ts = append(ts, targetAtMost(what, got, limit, measured))
	}
	worst, worstName := 0.0, ""
	n := 0
	for _, e := range r.E2E {
		if e.Spec.Latency != time.Second {
			continue
		}
		if n == 0 || e.Efficiency < worst {
			worst, worstName = e.Efficiency, e.Spec.Name
		}
		n++
	}
	if n > 0 {
		atLeast("scaling efficiency ≥ 0.9 at 1 s, every combination", worst, 0.9, fmt.Sprintf("worst %.2f (%s)", worst, worstName))
	}
	if r.Overhead != nil {
		atMost("worker overhead ≤ 5 ms/job", float64(r.Overhead.Overhead)/1e6, 5, ms(r.Overhead.Overhead)+" ms/job")
	}
	for _, f := range r.Free {
		atMost("queue wait p99 ≤ 50 ms with free capacity ("+f.Spec.Name+")", float64(f.QueueWait.P99)/1e6, 50,
			fmt.Sprintf("p99 %s ms (p50 %s ms) at %s jobs/s", ms(f.QueueWait.P99), ms(f.QueueWait.P50), rate(f.JobsPerSec)))
	}
	if sc := r.Scale; sc != nil {
		for _, rd := range sc.Reads {
			atMost(fmt.Sprintf("p99 ≤ 5 ms at %d jobs of %d users: %s", sc.Jobs, sc.Users, rd.Name), float64(rd.Latency.P99)/1e6, 5,
				fmt.Sprintf("p99 %s ms (p50 %s ms)", ms(rd.Latency.P99), ms(rd.Latency.P50)))
		}
		if b := sc.Burst; b.RateFirst > 0 {
			ratio := b.RateLast / b.RateFirst
			ts = append(ts, Target{What: fmt.Sprintf("burst of %d drains at a flat rate (last quarter within 0.8–1.25× the first)", b.Jobs),
				Measured: fmt.Sprintf("%s/s then %s/s", rate(b.RateFirst), rate(b.RateLast)), Met: ratio >= 0.8 && ratio <= 1.25,
				By: fmt.Sprintf("%.2f× the first quarter", ratio)})
		}
	}
	fp := r.Footprint
	if len(fp.APIIdleRSS) > 0 {
		atMost("idle RSS ≤ 30 MB (api)", float64(maxInt(fp.APIIdleRSS))/1e6, 30, fmt.Sprintf("%s MB (max of %d)", mb(maxInt(fp.APIIdleRSS)), len(fp.APIIdleRSS)))
	}
	if len(fp.WorkerIdleRSS) > 0 {
		atMost("idle RSS ≤ 30 MB (worker)", float64(maxInt(fp.WorkerIdleRSS))/1e6, 30, fmt.Sprintf("%s MB (max of %d)", mb(maxInt(fp.WorkerIdleRSS)), len(fp.WorkerIdleRSS)))
	}
	if len(fp.APIReady) > 0 {
		atMost("start → ready ≤ 1 s (api)", Quantile(fp.APIReady, 1).Seconds(), 1, fmt.Sprintf("max %s ms of %d", ms(Quantile(fp.APIReady, 1)), len(fp.APIReady)))
	}
	if fs := r.RiverFigures(); len(fs) > 0 {
		ts = append(ts, riverTarget(fs))
	}
	if len(fp.WorkerReady) > 0 {
		atMost("start → ready ≤ 1 s (worker)", Quantile(fp.WorkerReady, 1).Seconds(), 1, fmt.Sprintf("max %s ms of %d", ms(Quantile(fp.WorkerReady, 1)), len(fp.WorkerReady)))
	}
	return ts
}

// apiTargets are the API enqueue's targets.
func (r *Results) apiTargets() []Target {
	var ts []Target
	for _, a := range r.API {
		if a.Concurrency != 32 {
			continue
		}
		ts = append(ts, targetAtLeast("API enqueue ≥ 1.0× raw limit (c=32)", a.RatioRaw, 1.0,
			fmt.Sprintf("%s/s vs raw %s/s = %.2f×", rate(a.PerSec), rate(r.rawFull().OpsPerSec), a.RatioRaw)))
		ts = append(ts, targetAtMost("API p99 ≤ 25 ms (c=32)", float64(a.Latency.P99)/1e6, 25, ms(a.Latency.P99)+" ms"))
		ts = append(ts, Target{What: "API no errors (c=32)", Measured: fmt.Sprintf("%d errors of %d requests", a.Errors, a.TotalSent), Met: a.Errors == 0})
	}
	many, busy := r.apiAt(32), r.apiAt(128)
	if many.PerSec > 0 && busy.PerSec > 0 {
		ts = append(ts, targetAtLeast("API at c=128 no worse than at c=32 (ops/s)", busy.PerSec/many.PerSec, 1.0,
			fmt.Sprintf("%s/s vs %s/s, errors %d", rate(busy.PerSec), rate(many.PerSec), busy.Errors)))
	}
	if one := r.OneUser; one != nil && many.PerSec > 0 {
		ts = append(ts, targetAtLeast("API one user alone at c=32 within 20 % of many users (ops/s)", one.PerSec/many.PerSec, 0.8,
			fmt.Sprintf("%s/s vs %s/s from all users, p99 %s vs %s ms, errors %d", rate(one.PerSec), rate(many.PerSec),
				ms(one.Latency.P99), ms(many.Latency.P99), one.Errors)))
	}
	return ts
}

// targetAtLeast is a target met by got ≥ limit.
func targetAtLeast(what string, got, limit float64, measured string) Target {
	t := Target{What: what, Measured: measured, Met: got >= limit}
	if limit > 0 {
		t.By = fmt.Sprintf("%.2f× the target", got/limit)
	}
	return t
}

// targetAtMost is a target met by got ≤ limit.
func targetAtMost(what string, got, limit float64, measured string) Target {
	t := Target{What: what, Measured: measured, Met: got <= limit}
	if limit > 0 {
		t.By = fmt.Sprintf("%.2f× the limit", got/limit)
	}
	return t
}

// noise is the CPU the measured components do not account for, in cores: mean over the
// runs and the worst run.
func (r *Results) noise() (mean, worst float64, name string) {
	add := func(n string, u CPUUse) {
		if u.Wall <= 0 {
			return
		}
		c := float64(u.Other()) / float64(u.Wall)
		mean += c
		if name == "" || c > worst {
			worst, name = c, n
		}
	}
	n := 0
	for _, x := range r.Raw {
		add("raw "+string(x.Mode), x.CPU)
		n++
	}
	for _, x := range append(r.apiRuns(), r.RiverAPI...) {
		add(strings.TrimSpace(fmt.Sprintf("%s api c=%d", x.Peer, x.Concurrency)), x.CPU)
		n++
	}
	for _, x := range slices.Concat(r.E2E, r.Free, r.RiverE2E, r.AtRiverRate) {
		add(strings.TrimSpace(x.Spec.Peer+" "+x.Spec.Name), x.CPU)
		n++
	}
	if n > 0 {
		mean /= float64(n)
	}
	return mean, worst, name
}

// apiRuns are our enqueue runs: by concurrency, then from one user.
func (r *Results) apiRuns() []APIResult {
	runs := append([]APIResult{}, r.API...)
	if r.OneUser != nil {
		runs = append(runs, *r.OneUser)
	}
	return runs
}

func (r *Results) apiAt(conc int) APIResult {
	for _, a := range r.API {
		if a.Concurrency == conc && a.Experiment == "" {
			return a
		}
	}
	return APIResult{}
}

func (r *Results) rawFull() RawResult {
	for _, x := range r.Raw {
		if x.Mode == rawFull {
			return x
		}
	}
	return RawResult{}
}

// cpuCell is the CPU per job of the main components, in ms.
func cpuCell(u CPUUse, n int) string {
	if n <= 0 {
		return ""
	}
	var parts []string
	for _, k := range []string{"worker", "api", "postgres", "rabbitmq", "fakeopenai", "bench"} {
		if v, ok := u.ByComponent[k]; ok {
			parts = append(parts, ms(v/time.Duration(n)))
		} else {
			parts = append(parts, "–")
		}
	}
	parts = append(parts, ms(u.Other()/time.Duration(n)))
	return strings.Join(parts, " / ")
}

// markdown builds a page line by line.
type markdown struct{ b strings.Builder }

func (m *markdown) p(format string, args ...any) { fmt.Fprintf(&m.b, format+"\n", args...) }

// mdSection is a part of the page: a heading, an intro paragraph (none if empty) and a table
// (none if header is empty).
type mdSection struct {
	show          bool // false leaves the section out
	title, intro  string
	header, align string // the table's header row and its alignment row
	rows          []string
}

// section writes s.
func (m *markdown) section(s mdSection) {
	m.p("#### %s", s.title)
	m.p("")
	if s.intro != "" {
		m.p("%s", s.intro)
		if s.header != "" {
			m.p("")
		}
	}
	if s.header != "" {
		m.p("%s", s.header)
		m.p("%s", s.align)
	}
	for _, row := range s.rows {
		m.p("%s", row)
	}
}

// rowsOf is one table row per item.
func rowsOf[T any](items []T, row func(T) string) []string {
	rows := make([]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return rows
}

// p50p99 is a table cell "p50 / p99" in milliseconds.
func (d Dist) p50p99() string { return ms(d.P50) + " / " + ms(d.P99) }

// Markdown is the run as tables for docs/benchmarks.md.
func (r *Results) Markdown() string {
	m := &markdown{}
	m.p("Commit `%s`, %s, %s; `make bench` took %s.", r.Commit, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine, r.Took.Round(time.Second))
	m.p("")
	if mean, worst, name := r.noise(); name != "" {
		m.p("Noise: CPU used by other tenants of the machine (and kernel work no process is charged for) during the measured windows: mean %.2f cores, worst %.2f cores (%s).", mean, worst, name)
		m.p("")
	}
	first := true
	for _, s := range r.mdSections() {
		if !s.show {
			continue
		}
		if !first {
			m.p("")
		}
		m.section(s)
		first = false
	}
	return m.b.String()
}

// mdSections are the parts of the page, in order.
func (r *Results) mdSections() []mdSection {
	fp := r.Footprint
	return []mdSection{{
		show:   len(r.Raw)+len(r.API) > 0,
		title:  "Enqueue",
		intro:  "ops/s over the window; latency of one operation; CPU ms per operation: worker / api / postgres / rabbitmq / fakeopenai / bench / other.",
		header: "| run | c | ops/s | p50 ms | p99 ms | p99.9 ms | errors | ÷ raw | outbox drain ms | CPU ms/op |",
		align:  "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --- |",
		rows:   append(append(rowsOf(r.Raw, RawResult.mdRow), rowsOf(r.apiRuns(), APIResult.mdRow)...), rowsOf(r.RiverAPI, APIResult.mdRow)...),
	}, {
		show:   len(r.E2E) > 0,
		title:  "End to end",
		intro:  "Saturated: beyond the W×C worker slots, a backlog of max(W×C, 48) jobs at 0 s and max(W×C/4, 8) at 1 s is kept submitted through the api, so queue wait includes that backlog. Feeder short: share of the window with fewer jobs outstanding than slots. CPU ms/job: worker / api / postgres / rabbitmq / fakeopenai / bench / other.",
		header: "| LLM latency | workers × conc | jobs/s | capacity/s | efficiency | queue wait p50 / p99 ms | POST→completed p50 / p99 ms | jobs completed in window / submitted | feeder short | CPU busy | CPU ms/job |",
		align:  "| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |",
		rows:   append(rowsOf(r.E2E, E2EResult.saturatedRow), rowsOf(r.RiverE2E, E2EResult.saturatedRow)...),
	}, {
		show:   len(r.RiverAPI)+len(r.RiverE2E) > 0,
		title:  "Side by side with River",
		intro:  "The same job on River v0.51.2 (tools/riverpeer, its own database on the same server; River runs are the \"River\" rows above, each right after ours). CPU ms/op: api + worker + PostgreSQL, + RabbitMQ for ours (not the LLM or the load client, the same for both). Throughput counts as at River within 1 % (the job on the window's edge). Rows \"@River's rate\" compare CPU per job at equal load (ours open loop at River's jobs/s): shown, not counted in the target.",
		header: "| run | figure | ours | River | ours ÷ River | at or above River? |",
		align:  "| --- | --- | --: | --: | --: | --- |",
		rows:   rowsOf(r.RiverFigures(), RiverFigure.mdRow),
	}, {
		show:   len(r.Free)+len(r.AtRiverRate) > 0,
		title:  "With free capacity",
		intro:  "Open loop at half of what 1 worker × 32 could do; \"@River's rate\": ours at the jobs/s of River's run of the same settings, right after it.",
		header: "| run | offered/s | jobs/s | queue wait p50 / p99 ms | POST→completed p50 / p99 ms | jobs created in window / submitted | CPU busy | CPU ms/job |",
		align:  "| --- | --: | --: | --: | --: | --: | --: | --- |",
		rows:   rowsOf(slices.Concat(r.Free, r.AtRiverRate), E2EResult.openLoopRow),
	}, {
		show:  r.Overhead != nil,
		title: "Worker overhead",
		intro: r.Overhead.paragraph(),
	}, {
		show:   len(r.ExpAPI)+len(r.ExpOverhead) > 0,
		title:  "Experiments",
		intro:  "One change to the bench database for one run, to test a hypothesis; not the product's configuration.",
		header: "| experiment | run | result | vs the same run above | PostgreSQL waits |",
		align:  "| --- | --- | --- | --- | --- |",
		rows:   r.experimentRows(),
	}, {
		show:   r.Scale != nil,
		title:  "Scale",
		intro:  r.Scale.intro(),
		header: "| read | via | p50 ms | p99 ms | max ms | plan |",
		align:  "| --- | --- | --: | --: | --: | --- |",
		rows:   r.Scale.rows(),
	}, {
		show:   true,
		title:  "Footprint",
		intro:  fmt.Sprintf("Binaries built with %s.", fp.BinaryBuildTag),
		header: "| program | binary MB | idle RSS MB (median / max) | max RSS under load MB | start → ready ms (p50 / max, n) |",
		align:  "| --- | --: | --: | --: | --: |",
		rows: append([]string{
			footprintRow("api", fp.BinarySizes["api"], fp.APIIdleRSS, fp.APIMaxRSS, fp.APIReady),
			footprintRow("worker", fp.BinarySizes["worker"], fp.WorkerIdleRSS, fp.WorkerMaxRSS, fp.WorkerReady),
		}, fp.riverRows()...),
	}, {
		show:   true,
		title:  "Targets",
		header: "| target | measured | met? |",
		align:  "| --- | --- | --- |",
		rows:   rowsOf(r.Targets(), Target.mdRow),
	}}
}

// mdRow is r's row of the enqueue table.
func (r RawResult) mdRow() string {
	return fmt.Sprintf("| raw %s | %d | %s | %s | %s | %s | %d | %s | | %s |", r.Mode, r.Concurrency, rate(r.OpsPerSec), ms(r.Latency.P50), ms(r.Latency.P99),
		ms(r.Latency.P999), r.Errors, map[bool]string{true: "1.00", false: ""}[r.Mode == rawFull], cpuCell(r.CPU, r.Ops))
}

// mdRow is r's row of the enqueue table.
func (r APIResult) mdRow() string {
	name, drain := "api POST /api/cover-letter", fmt.Sprintf("%s (max backlog %d)", ms(r.OutboxDrain), r.OutboxMax)
	switch {
	case r.Peer != "":
		name, drain = "River peer POST /api/cover-letter", "–"
	case r.Users == 1:
		name += ", one user"
	case r.Users > 1:
		name += fmt.Sprintf(", %d users", r.Users)
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %d | %.2f | %s | %s |", name, r.Concurrency, rate(r.PerSec),
		ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), r.Errors, r.RatioRaw, drain, cpuCell(r.CPU, r.Accepted))
}

// saturatedRow is r's row of the saturated end-to-end table.
func (r E2EResult) saturatedRow() string {
	capacity, eff := "–", "–"
	if r.Spec.Latency > 0 {
		capacity, eff = rate(r.Spec.capacity()), fmt.Sprintf("%.2f", r.Efficiency)
	}
	peer := ""
	if r.Spec.Peer != "" {
		peer = " River"
	}
	return fmt.Sprintf("| %s | %d × %d%s | %s | %s | %s | %s | %s | %d / %d | %.0f%% | %.0f%% | %s |", latName(r.Spec.Latency), r.Spec.Workers, r.Spec.Conc, peer,
		rate(r.JobsPerSec), capacity, eff, r.QueueWait.p50p99(), r.PostToDone.p50p99(),
		r.Completed, r.Submitted, 100*r.FeederShort, r.CPU.BusyPct(), cpuCell(r.CPU, r.Completed))
}

// openLoopRow is r's row of the open-loop table.
func (r E2EResult) openLoopRow() string {
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %d / %d | %.0f%% | %s |", r.Spec.Name, rate(r.Spec.Rate), rate(r.JobsPerSec), r.QueueWait.p50p99(),
		r.PostToDone.p50p99(), r.QueueWait.N, r.Submitted, r.CPU.BusyPct(), cpuCell(r.CPU, r.Completed))
}

// paragraph is the worker overhead paragraph; "" for none.
func (o *Overhead) paragraph() string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("1 worker, concurrency 1, 0 s LLM latency, %d jobs: %s ms per job of which the LLM call %s ms → **overhead %s ms/job** (beside the call inside claim→complete %s ms; between jobs — complete transaction, ack, next delivery, claim transaction — %s ms). CPU per job: worker %s ms, fakeopenai %s ms, PostgreSQL %s ms, RabbitMQ %s ms.",
		o.Run.Completed, ms(o.PerJob), ms(o.LLM), ms(o.Overhead), ms(o.InClaim), ms(o.Between), ms(o.WorkerCPU), ms(o.FakeLLMCPU), ms(o.PostgresCPU), ms(o.RabbitCPU))
}

// experimentRows are the rows of the experiments table.
func (r *Results) experimentRows() []string {
	var rows []string
	for _, a := range r.ExpAPI {
		base := r.apiAt(32)
		rows = append(rows, fmt.Sprintf("| %s | api c=32 | %s/s, p50 %s ms, p99 %s ms, %d errors | %.2f× throughput, p99 %s → %s ms | %s |", a.Experiment, rate(a.PerSec),
			ms(a.Latency.P50), ms(a.Latency.P99), a.Errors, a.PerSec/max(base.PerSec, 1e-9), ms(base.Latency.P99), ms(a.Latency.P99), a.Waits.String()))
	}
	for _, o := range r.ExpOverhead {
		base := "–"
		if r.Overhead != nil {
			base = fmt.Sprintf("overhead %s → %s ms/job", ms(r.Overhead.Overhead), ms(o.Overhead))
		}
		rows = append(rows, fmt.Sprintf("| %s | worker overhead 0 s, 1×1 | %s ms/job overhead (per job %s ms, LLM %s ms) | %s | %s |", o.Experiment, ms(o.Overhead), ms(o.PerJob), ms(o.LLM), base, o.Run.Waits.String()))
	}
	return rows
}

// footprintRow is a program's row of the footprint table. A figure the run did not measure
// (a scale-only run samples no worker at idle, nor any process under load) reads "–".
func footprintRow(program string, binary int64, idleRSS []int64, maxRSS int64, ready []time.Duration) string {
	idle, load, start := "–", "–", "–"
	if len(idleRSS) > 0 {
		idle = mb(medianInt(idleRSS)) + " / " + mb(maxInt(idleRSS))
	}
	if maxRSS > 0 {
		load = mb(maxRSS)
	}
	if len(ready) > 0 {
		start = fmt.Sprintf("%s / %s (%d)", ms(Quantile(ready, 0.5)), ms(Quantile(ready, 1)), len(ready))
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s |", program, mb(binary), idle, load, start)
}

// riverRows are the River peer's rows of the footprint table (none if it did not run).
func (f Footprint) riverRows() []string {
	if f.RiverAPI == nil || f.RiverWorker == nil {
		return nil
	}
	return []string{
		footprintRow("riverpeer api (River)", f.BinarySizes["riverpeer"], f.RiverAPI.IdleRSS, f.RiverAPI.MaxRSS, f.RiverAPI.Ready),
		footprintRow("riverpeer worker (River)", f.BinarySizes["riverpeer"], f.RiverWorker.IdleRSS, f.RiverWorker.MaxRSS, f.RiverWorker.Ready),
	}
}

// mdRow is t's row of the targets table.
func (t Target) mdRow() string {
	verdict := "**missed**"
	if t.Met {
		verdict = "met"
	}
	if t.By != "" {
		verdict += " (" + t.By + ")"
	}
	return fmt.Sprintf("| %s | %s | %s |", t.What, t.Measured, verdict)
}

// intro is the scale section's paragraph: the seed and the burst.
func (sc *Scale) intro() string {
	if sc == nil {
		return ""
	}
	b := sc.Burst
	return fmt.Sprintf("%d finished jobs of %d users seeded in %s (30 days of history), then each read %d times, one at a time; plans from auto_explain in `scale-plans.txt`. "+
		"Burst: %d jobs enqueued through the api with no worker running in %s (%s/s), all published after %s; then 4 workers × 16 at 0 s drained the queue in %s (%s/s; first quarter %s/s, last quarter %s/s). "+
		"Largest resident sets, MB: %s. Plots: `scale-backlog.svg`, `scale-rss.svg`.",
		sc.Jobs, sc.Users, sc.SeedTook.Round(time.Second), func() int {
			if len(sc.Reads) > 0 {
				return sc.Reads[0].Latency.N
			}
			return 0
		}(), b.Jobs, b.EnqueueTook.Round(time.Second), rate(b.EnqueuePerSec), b.PublishedTook.Round(time.Second),
		b.DrainTook.Round(time.Second), rate(b.DrainPerSec), rate(b.RateFirst), rate(b.RateLast), mbMap(b.MaxRSS)) + sc.slowest()
}

// slowest says where the slowest answers of each read that has Server-Timing spent their time.
func (sc *Scale) slowest() string {
	var out strings.Builder
	for _, rd := range sc.Reads {
		if len(rd.Slowest) > 0 {
			fmt.Fprintf(&out, " Slowest %s answers (Server-Timing, ms): %s.", rd.Name, strings.Join(rd.Slowest, "; "))
		}
	}
	return out.String()
}

// rows are the scale section's rows, one per read.
func (sc *Scale) rows() []string {
	if sc == nil {
		return nil
	}
	return rowsOf(sc.Reads, func(rd ScaleRead) string {
		return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", rd.Name, rd.Via, ms(rd.Latency.P50), ms(rd.Latency.P99), ms(rd.Latency.Max), planSummary(rd.Plan))
	})
}
