package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Quantile returns the q-quantile (0 < q ≤ 1) of ds by the nearest-rank method, or 0 for no
// samples. ds need not be sorted; it is not modified.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return quantileSorted(s, q)
}

func quantileSorted(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Dist summarises a latency sample.
type Dist struct {
	N    int           `json:"n"`
	Mean time.Duration `json:"mean"`
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
}

// Summarise computes a Dist of ds.
func Summarise(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Dist{N: len(s), Mean: sum / time.Duration(len(s)), P50: quantileSorted(s, 0.50),
		P99: quantileSorted(s, 0.99), P999: quantileSorted(s, 0.999), Max: s[len(s)-1]}
}

// ms formats a duration in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return rate(float64(d) / float64(time.Millisecond))
}

// rate formats a per-second figure (and any figure with three significant digits or fewer).
func rate(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// mb formats a size in bytes as MB (10^6), one decimal.
func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/1e6) }
