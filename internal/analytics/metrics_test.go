package analytics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careerops/jobs/internal/analytics"
)

// The collector serves the rollups' totals as counters, by kind and model (and outcome), and
// the watermark; before any run, only the watermark, at 0.
func TestCollectorServesTheTotals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(analytics.NewCollector(b.pool))
	if families, err := reg.Gather(); err != nil || len(families) != 1 {
		t.Fatalf("before a run: %d metrics (%v), want the watermark alone", len(families), err)
	}
	done := time.Now().Add(-2 * time.Hour)
	b.letter(t, b.user, "completed", "gpt-4o-mini", 1000, 300, 2, done, time.Second)
	b.letter(t, b.user, "failed", "gpt-4o-mini", 0, 0, 3, done, time.Second)
	b.rollup(t, analytics.RollupOptions{})
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"careerops_usage_jobs_total kind=cover-letter.generate model=gpt-4o-mini outcome=completed": 1,
		"careerops_usage_jobs_total kind=cover-letter.generate model=gpt-4o-mini outcome=failed":    1,
		"careerops_usage_tokens_total kind=cover-letter.generate model=gpt-4o-mini type=prompt":     1000,
		"careerops_usage_tokens_total kind=cover-letter.generate model=gpt-4o-mini type=completion": 300,
		"careerops_usage_cost_micros_total kind=cover-letter.generate model=gpt-4o-mini":            330,
		"careerops_usage_retries_total kind=cover-letter.generate model=gpt-4o-mini":                3,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if len(got) != 7 {
		t.Errorf("%d series, want 7 (the watermark too): %v", len(got), got)
	}
}
