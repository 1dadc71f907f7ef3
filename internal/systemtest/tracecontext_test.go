package systemtest

import (
	"context"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
)

// TestClientTraceContextIsNotTrusted: a public client's traceparent does not choose the job's
// trace (unless TRUST_CLIENT_TRACE_CONTEXT says the api sits behind a gateway that sets it),
// and a client's baggage reaches neither the messages nor the third-party LLM.
func TestClientTraceContextIsNotTrusted(t *testing.T) {
	t.Parallel()
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	headers := []string{"traceparent", "00-" + clientTrace + "-00f067aa0ba902b7-01", "baggage", "session=s3cr3t,user.email=a@example.com"}
	for _, tt := range []struct {
		trust     string
		wantTrace bool
	}{{"", false}, {"true", true}} {
		t.Run("trust="+tt.trust, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{api: env{"TRUST_CLIENT_TRACE_CONTEXT": tt.trust}})
			token := b.user("a@example.com")
			r, err := b.api().Do(context.Background(), "POST", "/api/cover-letter", token,
				mustJSON(job.CreateRequest{JobDescription: "Engineer at Acme", CVText: "Go"}), headers...)
			var accepted job.Accepted
			if err != nil || r.Status != 202 || r.Decode(&accepted) != nil {
				t.Fatalf("POST = %v, %+v", err, r)
			}
			id := accepted.JobID
			j := b.waitFinal(id, 30*time.Second)
			v := b.status(token, id)
			if j.Status != job.StatusCompleted || (v.TraceID == clientTrace) != tt.wantTrace {
				t.Fatalf("job %s with trace %s; the client's trace %s taken: %v, want %v", j.Status, v.TraceID, clientTrace, v.TraceID == clientTrace, tt.wantTrace)
			}
			calls := b.llmHeaders.all()
			if len(calls) == 0 {
				t.Fatal("the LLM was not called")
			}
			for _, h := range calls {
				if got := h.Get("Baggage"); got != "" {
					t.Fatalf("the LLM received the client's baggage %q", got)
				}
			}
		})
	}
}
