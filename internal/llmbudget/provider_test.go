package llmbudget

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/testkit"
)

// Against a provider that limits requests per minute, replicas sharing a budget of that limit
// get no 429: the calls past the first burst (less the headroom) go one interval apart.
func TestReplicasWithinTheProvidersLimitGetNo429(t *testing.T) {
	t.Parallel()
	const rpm = 120 // a burst of 120, then one every 500 ms
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
		replicas[i] = New(client, store, Config{Name: "provider", Limits: Limits{RequestsPerMinute: rpm}, MaxWait: 10 * time.Second, Tokens: client.MaxTokens})
	}
	const calls = rpm + 6
	var wg sync.WaitGroup
	start := time.Now()
	for i := range calls {
		wg.Go(func() {
			if _, err := replicas[i%len(replicas)].Stream(context.Background(), "You write cover letters.", "A letter, please.", nil); err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if s := fake.Stats(); s.RateLimited != 0 || s.Completed != calls {
		t.Errorf("provider stats %+v: want %d completed, no 429", s, calls)
	}
	if took < 3500*time.Millisecond || took > 9*time.Second {
		t.Errorf("%d calls took %v, want about 4s (8 past the burst, 500 ms apart)", calls, took)
	}
}
