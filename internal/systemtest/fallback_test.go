package systemtest

import (
	"testing"
	"time"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// TestFallbackWritesWhileThePrimaryFails: the primary answers 500 to everything; the worker
// has a fallback (Azure's wire, another model). Each job completes on its first attempt,
// written by the fallback's model; two failures in a row open the breaker and the primary is
// no longer asked. Once it recovers and the cool-down is over, a probe closes the breaker and
// the primary writes again. The worker's metrics and the jobs' spans say so.
func TestFallbackWritesWhileThePrimaryFails(t *testing.T) {
	t.Parallel()
	const (
		fallbackModel = "gpt-4o-mini"
		cooldown      = 4 * time.Second // long enough for job 3 to come while the breaker is open
	)
	fallback, fallbackURL := testkit.StartFakeOpenAI(t, fakeopenai.Config{Profile: fakeopenai.ProfileAzure})
	b := setup(t, options{worker: env{
		"LLM_FALLBACK_BASE_URL": fallbackURL, "LLM_FALLBACK_API_KEY": "azure-test-key", "LLM_FALLBACK_API_TYPE": "azure",
		"LLM_FALLBACK_MODEL": fallbackModel, "LLM_FALLBACK_DEPLOYMENT": "letters-fallback",
		"LLM_BREAKER_FAILURES": "2", "LLM_BREAKER_COOLDOWN": cooldown.String(),
	}})
	if err := b.llm.SetFaults(fakeopenai.Faults{FailRate: 1}); err != nil {
		t.Fatal(err)
	}
	token := b.user("a@example.com")
	write := func(desc, wantModel string) {
		t.Helper()
		j := b.waitFinal(b.submit(token, desc, "Ten years of pipes", ""), 30*time.Second)
		if j.Status != job.StatusCompleted || j.Attempts != 1 || j.Model != wantModel {
			t.Fatalf("%s: %s after %d attempts by model %q (%s); want completed at once by %q", desc, j.Status, j.Attempts, j.Model, j.Error, wantModel)
		}
	}
	var opened time.Time // about when the second failure opened the breaker
	for i, desc := range []string{"Plumber at Mario Bros", "Welder at Acme", "Roofer at Initech"} {
		write(desc, fallbackModel)
		if i == 1 {
			opened = time.Now()
		}
		if got, want := b.llm.Stats().Requests, int64(min(i+1, 2)); got != want {
			t.Fatalf("after job %d the primary got %d requests, want %d (none once the breaker is open)", i+1, got, want)
		}
	}

	if err := b.llm.SetFaults(fakeopenai.Faults{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(opened.Add(cooldown + 100*time.Millisecond)))
	write("Baker at Hooli", "fake-gpt")
	if n := fallback.Stats().Completed; n != 3 {
		t.Fatalf("the fallback wrote %d letters, want 3", n)
	}

	worker := scrape(t, "http://"+b.workers[0].addr+"/metrics")
	checks := []struct {
		name      string
		got, want float64
	}{
		{"retried at once on the fallback", value(worker, "careerops_worker_llm_fallback_calls_total", "reason", "primary_failed"), 2},
		{"sent to the fallback while open", value(worker, "careerops_worker_llm_fallback_calls_total", "reason", "breaker_open"), 1},
		{"opened", value(worker, "careerops_worker_llm_breaker_transitions_total", "to", "open"), 1},
		{"closed", value(worker, "careerops_worker_llm_breaker_transitions_total", "to", "closed"), 1},
		{"state", value(worker, "careerops_worker_llm_breaker_state", "endpoint", "primary"), 0},
		{"primary failures", value(worker, "careerops_worker_llm_endpoint_calls_total", "endpoint", "primary", "outcome", "transient_error"), 2},
		{"fallback letters", value(worker, "careerops_worker_llm_endpoint_calls_total", "endpoint", "fallback", "outcome", "ok"), 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	endpoints := map[string]int{}
	for _, s := range b.spans.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == "careerops.llm.endpoint" {
				endpoints[kv.Value.AsString()]++
			}
		}
	}
	if endpoints["fallback"] != 3 || endpoints["primary"] != 1 {
		t.Errorf("spans name the endpoints %v, want fallback 3 times and primary once", endpoints)
	}
}
