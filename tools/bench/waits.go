package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Waits is what a bench database's busy backends were doing, sampled from
// pg_stat_activity: the share of (backend, sample) pairs per wait event ("CPU" when a
// backend was running, "idle in transaction" when it waited for its client).
type Waits struct {
	Samples int                `json:"samples"`
	Active  float64            `json:"meanActive"` // busy backends per sample
	Share   map[string]float64 `json:"share"`
}

// sampleWaits samples every 20 ms until the returned func is called, which returns the tally.
func sampleWaits(ctx context.Context, pool *pgxpool.Pool) func() Waits {
	stop := make(chan struct{})
	done := make(chan Waits, 1)
	go func() {
		counts := map[string]int{}
		samples, total := 0, 0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				res := Waits{Samples: samples, Share: map[string]float64{}}
				if samples > 0 {
					res.Active = float64(total) / float64(samples)
				}
				for k, v := range counts {
					res.Share[k] = float64(v) / float64(max(total, 1))
				}
				done <- res
				return
			case <-ctx.Done():
				continue
			case <-t.C:
			}
			rows, err := pool.Query(ctx, `
				SELECT CASE WHEN state = 'idle in transaction' THEN 'idle in transaction'
				            WHEN wait_event IS NULL THEN 'CPU'
				            ELSE wait_event_type || ':' || wait_event END
				FROM pg_stat_activity
				WHERE datname = current_database() AND state <> 'idle' AND backend_type = 'client backend'
				  AND application_name <> '`+benchAppName+`'`)
			if err != nil {
				continue
			}
			samples++
			for rows.Next() {
				var k string
				if rows.Scan(&k) == nil {
					counts[k]++
					total++
				}
			}
			rows.Close()
		}
	}()
	return func() Waits { close(stop); return <-done }
}

// String lists the largest shares, e.g. "Lock:object 61% CPU 20% …".
func (wt Waits) String() string {
	keys := make([]string, 0, len(wt.Share))
	for k := range wt.Share {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if wt.Share[keys[i]] != wt.Share[keys[j]] {
			return wt.Share[keys[i]] > wt.Share[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := []string{fmt.Sprintf("active=%.1f", wt.Active)}
	for i, k := range keys {
		if i == 5 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s=%.0f%%", strings.ReplaceAll(k, " ", "_"), 100*wt.Share[k]))
	}
	return "pg_waits{" + strings.Join(parts, " ") + "}"
}
