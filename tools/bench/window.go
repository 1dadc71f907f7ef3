package bench

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// window is a timed load: a warm-up, then the window [t0, t1] whose operations count.
type window struct{ t0, t1 time.Time }

func newWindow(warm, length time.Duration) window {
	start := time.Now()
	return window{start.Add(warm), start.Add(warm + length)}
}

// load is what a timed load did.
type load struct {
	lats     []time.Duration // of the operations that ended within the window
	keys     map[int]int     // the keys the operations returned (the HTTP statuses), all of them
	errs     int
	firstErr error
}

// run calls op(g, i) in conc goroutines (g) until the window ends or ctx does; i counts each
// goroutine's calls. A goroutine stops early when stop(err) says so.
func (w window) run(ctx context.Context, conc int, op func(g, i int) (int, error), stop func(error) bool) load {
	type sample struct {
		end time.Time
		lat time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
	)
	res := load{keys: map[int]int{}}
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []sample
			keys := map[int]int{}
			for i := 0; time.Now().Before(w.t1) && ctx.Err() == nil; i++ {
				s := time.Now()
				key, err := op(g, i)
				e := time.Now()
				keys[key]++
				if err != nil {
					mu.Lock()
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
					mu.Unlock()
					if stop != nil && stop(err) {
						break
					}
					continue
				}
				local = append(local, sample{e, e.Sub(s)})
			}
			mu.Lock()
			defer mu.Unlock()
			samples = append(samples, local...)
			for k, v := range keys {
				res.keys[k] += v
			}
		}()
	}
	wg.Wait()
	for _, s := range samples {
		if !s.end.Before(w.t0) && !s.end.After(w.t1) {
			res.lats = append(res.lats, s.lat)
		}
	}
	return res
}

// edges snaps the CPU of comps at the window's edges (and, with waits, samples the wait
// events of pool's database within it); the returned func waits for the end and gives them.
func (w window) edges(ctx context.Context, pool *pgxpool.Pool, comps []component, waits bool) func() (cpuSnap, cpuSnap, Waits) {
	snaps := make(chan cpuSnap, 2)
	waitsDone := make(chan Waits, 1)
	go func() {
		time.Sleep(time.Until(w.t0))
		stopWaits := func() Waits { return Waits{} }
		if waits {
			stopWaits = sampleWaits(ctx, pool)
		}
		snaps <- snapCPU(comps)
		time.Sleep(time.Until(w.t1))
		snaps <- snapCPU(comps)
		waitsDone <- stopWaits()
	}()
	return func() (cpuSnap, cpuSnap, Waits) {
		a, b := <-snaps, <-snaps
		return a, b, <-waitsDone
	}
}
