package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// TestWorkerSIGTERMLosesNoJobAndRunsNoneTwice: workers stopped with jobs in flight — one that
// drains them to the end, one whose drain timeout is shorter than the LLM call and so gives
// them back — lose nothing, and every job gets exactly one result and one announcement.
func TestWorkerSIGTERMLosesNoJobAndRunsNoneTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, options{concurrency: 4})
	if err := b.llm.SetFaults(fakeopenai.Faults{Latency: 700 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	token := b.user("a@example.com")
	const n = 24
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.submit(token, fmt.Sprintf("Role %d at Wayne Enterprises", i), "Batcomputer operator", "")
	}

	// The first worker drains its jobs in flight to completion.
	b.waitCount(4, 10*time.Second, `SELECT count(*) FROM cover_letter_jobs WHERE status = 'processing'`)
	b.workers[0].stop()

	// The next gives its jobs back: its drain timeout is shorter than one LLM call.
	b.workerEnv["WORKER_DRAIN_TIMEOUT"] = "100ms"
	hasty := b.startWorker()
	b.waitCount(4, 10*time.Second, `SELECT count(*) FROM cover_letter_jobs WHERE status = 'processing'`)
	hasty.stop()

	b.workerEnv["WORKER_DRAIN_TIMEOUT"] = "10s"
	b.startWorker()
	for _, id := range ids {
		if j := b.waitFinal(id, 60*time.Second); j.Status != job.StatusCompleted {
			t.Fatalf("job %s ended %s: %s", id, j.Status, j.Error)
		}
	}
	// Exactly one completion message per job.
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)
	ch := testkit.Channel(t, b.amqpURL)
	seen := map[string]int{}
	for range n {
		m := getOne(t, ch, job.QueueCompleted, 10*time.Second)
		var done job.CompletedMessage
		if err := json.Unmarshal(m.Body, &done); err != nil {
			t.Fatal(err)
		}
		seen[done.JobID]++
	}
	if m, ok, _ := ch.Get(job.QueueCompleted, true); ok {
		t.Fatalf("more completion messages than jobs: extra %s %s", m.MessageId, m.Body)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("job %s announced %d times", id, seen[id])
		}
	}
	// Given-back jobs were attempted again; none was abandoned mid-way.
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs WHERE attempts > 1`); n < 1 {
		t.Fatalf("%d jobs were retried; the hasty worker should have given some back", n)
	}
}

// TestAJobWhoseClaimACrashUndidStillRuns: a claim commits without waiting for its WAL flush,
// so a PostgreSQL crash just after it may undo it: the job is pending again while a worker
// runs it. That worker, finding the job pending when it stores the letter, gives its message
// back (it may be the job's only one) instead of dropping it as another worker's, and the job
// runs again to its end.
func TestAJobWhoseClaimACrashUndidStillRuns(t *testing.T) {
	t.Parallel()
	b := setup(t, options{concurrency: 1})
	token := b.user("a@example.com")
	b.llmHold.Lock()
	release := sync.OnceFunc(b.llmHold.Unlock)
	defer release()
	id := b.submit(token, "Role at Wayne Enterprises", "Batcomputer operator", "")
	testkit.Eventually(t, 10*time.Second, func() bool { return len(b.llmHeaders.all()) == 1 }, "the job's LLM call")
	// What a crash that lost the claim's commit leaves: the job as it was before its claim.
	testkit.UndoClaim(t, b.pool, id)
	release()
	if j := b.waitFinal(id, 30*time.Second); j.Status != job.StatusCompleted || j.Attempts != 1 || j.CoverLetter == "" {
		t.Fatalf("job %s ended %s after %d attempts (%q), want completed once", id, j.Status, j.Attempts, j.Error)
	}
	if calls := len(b.llmHeaders.all()); calls != 2 {
		t.Fatalf("%d LLM calls, want 2: the undone claim's and the one after", calls)
	}
}

// TestAcceptedJobsSurviveBrokerOutageAndAPICrash: the api accepts jobs while it cannot reach
// RabbitMQ at all, and is then stopped at once; the jobs, being in the outbox, are published
// by another process's relay (here the worker's) and complete. A 202 is a promise kept by
// PostgreSQL alone.
func TestAcceptedJobsSurviveBrokerOutageAndAPICrash(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noAPI: true})
	// Stop the worker: for now nothing may publish.
	b.workers[0].stop()

	b.startAPI("amqp://guest:guest@127.0.0.1:1/") // nothing listens on port 1
	token := b.user("a@example.com")
	var ids []string
	for i := range 10 {
		ids = append(ids, b.submit(token, fmt.Sprintf("Job %d at Stark Industries", i), "Arc reactors", ""))
	}
	if r := b.do("GET", "/readyz", "", nil); r.Status != 503 {
		t.Fatalf("readyz without a broker = %d %s, want 503", r.Status, r.Body)
	}
	b.stopAPI()
	if n := b.count(`SELECT count(*) FROM outbox_messages WHERE routing_key = $1`, job.QueueGenerate); n != 10 {
		t.Fatalf("%d messages wait in the outbox, want 10", n)
	}

	b.startWorker()
	for _, id := range ids {
		if j := b.waitFinal(id, 30*time.Second); j.Status != job.StatusCompleted {
			t.Fatalf("job %s ended %s", id, j.Status)
		}
	}
	_ = context.Background()
}

// TestProgramsSurviveLostConnections: RabbitMQ drops every connection (as in a broker restart)
// and PostgreSQL terminates every session; the api and the worker reconnect on their own and
// the next jobs complete.
func TestProgramsSurviveLostConnections(t *testing.T) {
	t.Parallel()
	b, token, _, _ := oneJob(t, "Before at Acme", "CV")

	testkit.CloseConnections(t, b.amqpURL)
	if _, err := b.pool.Exec(context.Background(),
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}

	// A request may meet a dead pooled connection once (503, retry); after that all is well.
	var ids []string
	testkit.Eventually(t, 30*time.Second, func() bool {
		r := b.do("POST", "/api/cover-letter", token, jobBody(fmt.Sprintf("After %d at Acme", len(ids)), "CV", ""))
		switch r.Status {
		case http.StatusAccepted:
			var out struct{ JobID string }
			r.json(t, &out)
			ids = append(ids, out.JobID)
		case http.StatusServiceUnavailable: // asked again
		default:
			t.Fatalf("POST after reconnect = %d %s", r.Status, r.Body)
		}
		return len(ids) == 5
	}, "five jobs accepted after the reconnect")
	for _, id := range ids {
		if j := b.waitFinal(id, 30*time.Second); j.Status != job.StatusCompleted {
			t.Fatalf("job %s ended %s", id, j.Status)
		}
	}
	for _, addr := range []string{b.apiURL + "/readyz", "http://" + b.workers[0].addr + "/readyz"} {
		waitReady(t, addr)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	if err := testkit.WaitUntil(context.Background(), 10*time.Second, 50*time.Millisecond, func() bool { return answers200(url) }); err != nil {
		t.Fatalf("%s not ready: %v", url, err)
	}
}

// answers200 reports whether a GET of url answers 200.
func answers200(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
