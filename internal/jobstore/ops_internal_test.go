package jobstore

import (
	"fmt"
	"testing"

	"github.com/careerops/jobs/internal/job"
)

func TestEstimateCounts(t *testing.T) {
	statuses := []job.Status{job.StatusCompleted, job.StatusCancelled}
	for _, c := range []struct {
		name  string
		rows  float64
		vals  []string
		freqs []float32
		want  string
	}{
		{"both common", 1e6, []string{"completed", "cancelled", "failed"}, []float32{0.9, 0.08, 0.02}, "map[cancelled:80000 completed:900000]"},
		{"one too rare for the statistics", 1e6, []string{"completed"}, []float32{0.99}, "map[cancelled:0 completed:990000]"},
		{"no statistics yet", 5e4, nil, nil, "map[cancelled:0 completed:0]"},
		{"fewer frequencies than values", 1e6, []string{"completed", "cancelled"}, []float32{0.5}, "map[cancelled:0 completed:500000]"},
	} {
		if got := fmt.Sprint(estimateCounts(c.rows, c.vals, c.freqs, statuses)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestShownCounts(t *testing.T) {
	estimates := map[job.Status]int{job.StatusPending: 9000, job.StatusCompleted: 800000, job.StatusFailed: 3, job.StatusCancelled: 100}
	for _, c := range []struct {
		name    string
		counted map[job.Status]int
		limit   int
		want    string
	}{
		{"under the limit: counts; the rest estimated", map[job.Status]int{job.StatusPending: 40, job.StatusProcessing: 2, job.StatusFailed: 5000}, 5000,
			"{map[cancelled:100 completed:800000 failed:5000 pending:40 processing:2] [completed cancelled]}"},
		{"past the limit: the estimate", map[job.Status]int{job.StatusPending: 5001, job.StatusProcessing: 0, job.StatusFailed: 5001}, 5000,
			"{map[cancelled:100 completed:800000 failed:5001 pending:9000 processing:0] [pending completed failed cancelled]}"},
	} {
		if got := fmt.Sprint(shownCounts(c.counted, estimates, c.limit)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
