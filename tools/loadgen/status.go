package loadgen

import (
	"context"
	"sync"
	"time"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/job"
)

// WaitFinal polls the accepted jobs of rep through api until each is final or ctx ends, with
// up to conc requests at once, and returns the last status seen of each (by job id).
func WaitFinal(ctx context.Context, api *apiclient.Client, tokens []string, rep *Report, every time.Duration, conc int) map[string]job.View {
	out := map[string]job.View{}
	pending := map[string]JobResult{}
	for _, j := range rep.Jobs {
		if j.JobID != "" {
			pending[j.JobID] = j
		}
	}
	for len(pending) > 0 && ctx.Err() == nil {
		pollOnce(ctx, api, tokens, pending, out, conc)
		for id := range pending {
			if out[id].Status.Final() {
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			break
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return out
}

// pollOnce reads every pending job once, conc at a time, into out.
func pollOnce(ctx context.Context, api *apiclient.Client, tokens []string, pending map[string]JobResult, out map[string]job.View, conc int) {
	var mu sync.Mutex
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	for id, j := range pending {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := api.Status(ctx, tokens[j.User], id)
			if err != nil {
				return // asked again next round
			}
			mu.Lock()
			out[id] = s
			mu.Unlock()
		}()
	}
	wg.Wait()
}
