package chaos

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/careerops/jobs/tools/loadgen"
)

// 9. LLM fallback: mid-run the primary LLM answers 500 to everything for 6 s. Each worker's
// circuit breaker opens after 3 failures in a row and the fallback endpoint (Azure's wire,
// another model) writes the letters, a failed call retried on it at once; when the primary
// recovers, a probe closes each breaker and the primary writes again. No job fails, and the
// jobs say which model wrote their letter.
func llmFallback() scenario {
	// The cool-down of 500 ms grows to at most 4 s: every breaker closes while the load still
	// runs (6 s after the primary is back).
	const down = 6 * time.Second
	var tDown, tUp time.Time
	return scenario{
		name: "llm-fallback",
		sys: SystemConfig{Workers: 3, FakeArgs: []string{"--latency", "200ms"},
			Fallback: true, FallbackArgs: []string{"--latency", "200ms"},
			WorkerEnv: map[string]string{"LLM_BREAKER_FAILURES": "3", "LLM_BREAKER_COOLDOWN": "500ms"}},
		load: loadgen.Config{Jobs: 400, Rate: 25, Concurrency: 16},
		faults: func(r *run, loadDone <-chan struct{}) {
			r.waitAccepted(100, loadDone)
			if err := SetFaults(r.ctx, r.s.FakeURL, "200ms", 1, 0); err != nil {
				r.problem("take the primary down: %v", err)
				return
			}
			tDown = time.Now()
			r.sleep(down)
			if err := SetFaults(r.ctx, r.s.FakeURL, "200ms", 0, 0); err != nil {
				r.problem("bring the primary back: %v", err)
			}
			tUp = time.Now()
			<-loadDone
		},
		check: func(_ *run, c *Check) { c.RequestsPerAttempt, c.NoOverlap = 2, true },
		after: func(r *run, f *Figures) { fallbackFigures(r, f, tDown, tUp) },
	}
}

// fallbackFigures counts the letters each model wrote and times the switches: to the first
// letter by the fallback after the primary went down, and back to the first by the primary
// after it came back; with the breakers' state changes from the workers' logs.
func fallbackFigures(r *run, f *Figures, tDown, tUp time.Time) {
	rows, err := r.s.Rows(r.ctx)
	if err != nil {
		r.problem("read jobs: %v", err)
		return
	}
	by := map[string]int{}
	var toFallback, toPrimary time.Duration = -1, -1
	for _, row := range rows {
		if row.Status != "completed" || row.CompletedAt == nil {
			continue
		}
		by[row.Model]++
		at := *row.CompletedAt
		switch {
		case row.Model == FallbackModel && at.After(tDown) && (toFallback < 0 || at.Sub(tDown) < toFallback):
			toFallback = at.Sub(tDown)
		case row.Model == PrimaryModel && at.After(tUp) && (toPrimary < 0 || at.Sub(tUp) < toPrimary):
			toPrimary = at.Sub(tUp)
		}
	}
	opens, firstOpen := breakerLog(r, "llm: primary endpoint failing", tDown)
	closes, _ := breakerLog(r, "llm: primary endpoint breaker closed", tDown)
	stats, err := FakeStats(r.ctx, r.s.FakeURL)
	if err != nil {
		r.problem("fakeopenai stats: %v", err)
	}
	fallbackRequests, _ := r.s.FallbackProxy.Total()
	f.Extra = append(f.Extra, fmt.Sprintf("by_primary=%d by_fallback=%d switch=%.2fs first_open=%.2fs back=%.2fs breaker_opens=%d breaker_closes=%d primary_500=%d fallback_requests=%d",
		by[PrimaryModel], by[FallbackModel], toFallback.Seconds(), firstOpen.Seconds(), toPrimary.Seconds(), opens, closes, stats["failed"], fallbackRequests))
	switch {
	case f.Failed > 0:
		r.problem("%d jobs failed: the fallback should have written them", f.Failed)
	case by[FallbackModel] == 0 || toFallback < 0:
		r.problem("the fallback wrote no letter while the primary was down")
	case toPrimary < 0:
		r.problem("the primary wrote no letter after it came back: the breakers did not close")
	case opens < len(r.s.AllWorkers()) || closes < len(r.s.AllWorkers()):
		r.problem("%d breakers opened and %d closed, want each of the %d workers' to do both", opens, closes, len(r.s.AllWorkers()))
	case len(by) != 2:
		r.problem("letters by models %v, want only %s and %s", by, PrimaryModel, FallbackModel)
	}
}

// breakerLog counts the workers' log lines with msg and says how long after since the first
// was written.
func breakerLog(r *run, msg string, since time.Time) (n int, first time.Duration) {
	first = -1
	for _, w := range r.s.AllWorkers() {
		for _, line := range grepLog(w.Log, 1000, msg) {
			var l struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			n++
			if d := l.Time.Sub(since); first < 0 || d < first {
				first = d
			}
		}
	}
	return n, first
}
