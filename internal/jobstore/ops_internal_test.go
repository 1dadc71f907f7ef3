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
