package systemtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/job"
)

type opsOverview struct {
	Queues []struct {
		Name      string `json:"name"`
		Messages  int    `json:"messages"`
		Consumers int    `json:"consumers"`
	} `json:"queues"`
	JobsByStatus   map[string]int `json:"jobsByStatus"`
	RecentFailures []struct {
		JobID     string    `json:"jobId"`
		UserID    int64     `json:"userId"`
		Error     string    `json:"error"`
		UpdatedAt time.Time `json:"updatedAt"`
		TraceID   string    `json:"traceId"`
	} `json:"recentFailures"`
	DLQ []struct {
		JobID     string `json:"jobId"`
		MessageID string `json:"messageId"`
		Reason    string `json:"reason"`
		Error     string `json:"error"`
	} `json:"dlq"`
	JaegerURL string `json:"jaegerUrl"`
}

type devToken struct {
	Token  string `json:"token"`
	UserID int64  `json:"userId"`
	Email  string `json:"email"`
}

func (b *bundle) devToken(body string) devToken {
	b.t.Helper()
	r := b.do("POST", "/dev/token", "", []byte(body))
	if r.Status != http.StatusOK {
		b.t.Fatalf("POST /dev/token %s = %d %s", body, r.Status, r.Body)
	}
	var out devToken
	r.json(b.t, &out)
	return out
}

func (b *bundle) overview(token string) opsOverview {
	b.t.Helper()
	r := b.do("GET", "/api/ops/overview", token, nil)
	if r.Status != http.StatusOK {
		b.t.Fatalf("GET /api/ops/overview = %d %s", r.Status, r.Body)
	}
	var out opsOverview
	r.json(b.t, &out)
	return out
}

// TestOpsPageSeesAFailedJobAndRequeuesIt: an admin signed in with a dev token sees a job that
// failed for good in the counts, the recent failures (with its trace) and the DLQ, and
// requeues it from the API once the LLM is healthy again; other users are refused.
func TestOpsPageSeesAFailedJobAndRequeuesIt(t *testing.T) {
	t.Parallel()
	const jaeger = "http://jaeger.test:16686"
	b := setup(t, options{api: env{"DEV_TOKEN_ENDPOINT": "true", "JAEGER_UI_URL": jaeger}})

	admin := b.devToken(`{"admin":true}`)
	if id, err := auth.NewVerifier([]byte(jwtSecret)).Identify(admin.Token); err != nil || !id.Admin || id.UserID != admin.UserID ||
		admin.Email != "dev@example.com" {
		t.Fatalf("dev token %+v speaks for %+v (%v)", admin, id, err)
	}
	if again := b.devToken(`{}`); again.UserID != admin.UserID {
		t.Fatalf("second dev token is for user %d, want %d", again.UserID, admin.UserID)
	}

	token := b.user("a@example.com")
	for _, r := range []response{
		b.do("GET", "/api/ops/overview", token, nil),
		b.do("POST", "/api/ops/dlq/requeue", token, []byte(`{"all":true}`)),
	} {
		if r.Status != http.StatusForbidden {
			t.Fatalf("a user token on the ops API = %d %s, want 403", r.Status, r.Body)
		}
	}

	if err := b.llm.SetFaults(faultsFailing()); err != nil {
		t.Fatal(err)
	}
	id := b.submit(token, "Pilot at Oceanic", "ATPL", "")
	if j := b.waitFinal(id, 30*time.Second); j.Status != job.StatusFailed {
		t.Fatalf("job = %s, want failed", j.Status)
	}
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)
	dlqDepth(t, b.amqpURL, 1)

	o := b.overview(admin.Token)
	if o.JobsByStatus["failed"] != 1 || len(o.JobsByStatus) != 5 || o.JaegerURL != jaeger {
		t.Errorf("jobsByStatus = %v, jaegerUrl = %q", o.JobsByStatus, o.JaegerURL)
	}
	if len(o.RecentFailures) != 1 || o.RecentFailures[0].JobID != id || o.RecentFailures[0].TraceID == "" ||
		!strings.Contains(o.RecentFailures[0].Error, "gave up") {
		t.Errorf("recentFailures = %+v", o.RecentFailures)
	}
	if len(o.DLQ) != 1 || o.DLQ[0].JobID != id || o.DLQ[0].Reason != job.ReasonAttemptsExhausted {
		t.Errorf("dlq = %+v", o.DLQ)
	}
	queues := map[string]int{}
	for _, q := range o.Queues {
		queues[q.Name] = q.Messages
	}
	if len(queues) != 2*len(job.Kinds())+1 || queues[job.QueueDLQ] != 1 { // each kind's queue and DLQ, and completed
		t.Errorf("queues = %+v", o.Queues)
	}
	dlqDepth(t, b.amqpURL, 1) // looking did not take it

	if err := b.llm.SetFaults(faultsHealthy()); err != nil {
		t.Fatal(err)
	}
	r := b.do("POST", "/api/ops/dlq/requeue", admin.Token, []byte(`{"jobId":"`+id+`"}`))
	if r.Status != http.StatusOK || string(r.Body) != `{"requeued":1,"skipped":0}` {
		t.Fatalf("requeue = %d %s", r.Status, r.Body)
	}
	if j := b.waitFinal(id, 30*time.Second); j.Status != job.StatusCompleted {
		t.Fatalf("after requeue job = %s, want completed", j.Status)
	}
	dlqDepth(t, b.amqpURL, 0)

	for body, want := range map[string]int{
		`{"jobId":"` + id + `"}`: http.StatusConflict, // completed now, and not in the DLQ
		`{"jobId":"job-none"}`:   http.StatusNotFound,
		`{"all":true}`:           http.StatusOK,
		`{}`:                     http.StatusUnprocessableEntity,
	} {
		if r := b.do("POST", "/api/ops/dlq/requeue", admin.Token, []byte(body)); r.Status != want {
			t.Errorf("requeue %s = %d %s, want %d", body, r.Status, r.Body, want)
		}
	}
}

// TestDevTokenEndpointIsOffByDefault: without DEV_TOKEN_ENDPOINT nobody mints tokens.
func TestDevTokenEndpointIsOffByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	if r := b.do("POST", "/dev/token", "", []byte(`{"admin":true}`)); r.Status != http.StatusNotFound {
		t.Fatalf("POST /dev/token = %d %s, want 404", r.Status, r.Body)
	}
}
