package llmbudget

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/testkit"
)

// Against a provider that limits requests per minute, replicas sharing a budget of that limit
// get no 429: past the first burst (less the headroom) calls go one interval apart, and the
// calls deferred meanwhile (their turn beyond MaxWait) come back, as the worker does them,
// when the budget said, each about once.
func TestReplicasWithinTheProvidersLimitGetNo429(t *testing.T) {
	t.Parallel()
	const rpm = 120 // a burst of 118, then one every 500 ms
	fake, err := fakeopenai.New(fakeopenai.Config{LimitRPM: rpm, LimitTPM: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	pool, _ := testkit.NewPool(t)
	store := NewStore(pool)
	client := llm.New(llm.Config{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "gpt-4o-mini", MaxTokens: 300})
	replicas := make([]*Budgeted, 4)
	for i := range replicas {
		replicas[i] = New(client, store, Config{Name: "provider", Limits: Limits{RequestsPerMinute: rpm}, MaxWait: time.Second, Tokens: client.MaxTokens})
	}
	const calls = rpm + 12
	var (
		wg        sync.WaitGroup
		deferrals = make([]int, calls) // each call's own
	)
	start := time.Now()
	for i := range calls {
		wg.Go(func() {
			for {
				_, err := replicas[i%len(replicas)].Stream(context.Background(), "You write cover letters.", "A letter, please.", nil)
				var e *llm.Error
				if !errors.Is(err, llm.ErrDeferred) || !errors.As(err, &e) {
					if err != nil {
						t.Errorf("call %d: %v", i, err)
					}
					return
				}
				deferrals[i]++
				time.Sleep(e.RetryAfter)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	total, most := 0, 0
	for _, d := range deferrals {
		total, most = total+d, max(most, d)
	}
	t.Logf("%d calls in %v, %d deferrals, at most %d for one call", calls, took.Round(time.Millisecond), total, most)
	if s := fake.Stats(); s.RateLimited != 0 || s.Completed != calls {
		t.Errorf("provider stats %+v: want %d completed, no 429", s, calls)
	}
	if most > 2 {
		t.Errorf("a call was deferred %d times, want at most 2", most)
	}
	if took < 6500*time.Millisecond || took > 12*time.Second {
		t.Errorf("%d calls took %v, want about 7s (14 past the burst, 500 ms apart)", calls, took)
	}
}
