package ctlcmd_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

const traceparent = testkit.Traceparent

// testBundle is a test's own database and virtual host (testkit.Queues) and the environment
// careeropsctl gets.
type testBundle struct {
	*testkit.Queues
	vars  map[string]string
	store *jobstore.Store
}

// setup marks t parallel and gives it its own queues, database and store.
func setup(t *testing.T) *testBundle {
	t.Helper()
	t.Parallel()
	q := testkit.NewQueues(t)
	return &testBundle{Queues: q, vars: map[string]string{"DATABASE_URL": q.DatabaseURL, "RABBITMQ_URL": q.URL}, store: jobstore.New(q.Pool)}
}

func TestDLQList(t *testing.T) {
	t.Parallel()

	t.Run("EmptyDLQ", func(t *testing.T) {
		b := setup(t)
		wantStdout(t, map[string]string{"RABBITMQ_URL": b.vars["RABBITMQ_URL"]}, "DLQ is empty\n", "dlq", "list")
	})

	t.Run("ShowsMessagesAndLeavesThemInTheDLQ", func(t *testing.T) {
		b := setup(t)
		longError := b.DeadLetterEachKind(t)

		res := runOK(t, b.vars, "dlq", "list")
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("stdout = %q, want a header and 3 rows", res.stdout)
		}
		for i, want := range [][]string{
			{"JOB_ID", "REASON", "ERROR", "MESSAGE_ID"},
			{"job-worker", job.ReasonAttemptsExhausted, "the LLM answered 500 xxx", "job-worker/dead"},
			{"job-broker", "delivery_limit", "-", "job-broker/1"},
			{"-", job.ReasonInvalidMessage, "invalid JSON", "junk-1"},
		} {
			for _, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		}
		if strings.Contains(lines[1], strings.Repeat("x", 80)) || !strings.Contains(lines[1], "…") {
			t.Errorf("line 1 = %q, want the error cut to 80 characters", lines[1])
		}

		if !b.WantQueueLen(t, job.QueueDLQ, 3) {
			t.FailNow()
		}

		// The messages came back in order: a second listing is the same, here as JSON.
		res = runOK(t, b.vars, "dlq", "list", "--json")
		var got []map[string]string
		for _, line := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
			var m map[string]string
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q is not a JSON object: %v", line, err)
			}
			got = append(got, m)
		}
		if len(got) != 3 {
			t.Fatalf("got %d JSON lines, want 3: %q", len(got), res.stdout)
		}
		if got[0]["jobId"] != "job-worker" || got[0]["error"] != longError || got[1]["reason"] != "delivery_limit" || got[2]["jobId"] != "" {
			t.Errorf("JSON lines = %v", got)
		}

		res = runOK(t, b.vars, "dlq", "list", "--limit", "1")
		if strings.Count(res.stdout, "\n") != 2 || !strings.Contains(res.stderr, "2 more") {
			t.Errorf("--limit 1: stdout = %q, stderr = %q, want one row and a note about 2 more", res.stdout, res.stderr)
		}
		if !b.WantQueueLen(t, job.QueueDLQ, 3) {
			t.FailNow()
		}
	})
}

func TestDLQRequeue(t *testing.T) {
	t.Parallel()

	t.Run("FailedJobByIDGoesToTheOutbox", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-1")

		wantStdout(t, b.vars, "requeued job-1\nrequeued 1, skipped 0\n", "dlq", "requeue", "job-1")
		b.WantQueueLen(t, job.QueueDLQ, 0)
		b.WantStatus(t, "job-1", job.StatusPending)
		b.WantGenerateRows(t, "job-1", 1)
		var tp string
		if err := b.Pool.QueryRow(context.Background(),
			`SELECT coalesce(headers->>'traceparent', '') FROM outbox_messages WHERE routing_key = $1`, job.QueueGenerate).Scan(&tp); err != nil {
			t.Fatal(err)
		}
		if tp != traceparent {
			t.Errorf("outbox message traceparent = %q, want the DLQ message's %q", tp, traceparent)
		}
		b.WantQueueLen(t, job.QueueGenerate, 0) // publishing is the relay's job
	})

	t.Run("ByIDLeavesOtherJobsMessagesInTheDLQ", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusFailed, "job-a", "job-b")

		wantStdout(t, b.vars, "requeued job-b\nrequeued 1, skipped 0\n", "dlq", "requeue", "job-b")
		if !b.WantQueueLen(t, job.QueueDLQ, 1) {
			t.FailNow()
		}
		if d := b.Get(t, job.QueueDLQ); !strings.Contains(string(d.Body), `"job-a"`) {
			t.Errorf("DLQ kept %s, want job-a's message", d.Body)
		}
		b.WantStatus(t, "job-a", job.StatusFailed)
	})

	t.Run("JobThatIsNoLongerFailedIsSkipped", func(t *testing.T) {
		b := setup(t)
		b.DeadJobs(t, job.StatusCompleted, "job-done")

		wantStdout(t, b.vars, "skipped job-done (status is completed)\nrequeued 0, skipped 1\n", "dlq", "requeue", "--all")
		b.WantQueueLen(t, job.QueueDLQ, 0)
		b.WantGenerateRows(t, "job-done", 0)
	})

	t.Run("FailedJobWithoutDLQMessageIsRequeuedFromTheDatabase", func(t *testing.T) {
		b := setup(t)
		b.InsertJob(t, "job-gone", job.StatusFailed)

		wantStdout(t, b.vars, "requeued job-gone (no DLQ message; requeued from the database)\nrequeued 1, skipped 0\n", "dlq", "requeue", "job-gone")
		b.WantStatus(t, "job-gone", job.StatusPending)
		b.WantGenerateRows(t, "job-gone", 1)
	})

	t.Run("UnknownOrUnfailedJobIDIsAnError", func(t *testing.T) {
		b := setup(t)
		b.InsertJob(t, "job-ok", job.StatusCompleted)
		for id, want := range map[string]string{
			"job-none": "job job-none is neither in the DLQ nor in the database",
			"job-ok":   "job job-ok is not in the DLQ and its status is completed",
		} {
			res := run(t, b.vars, "dlq", "requeue", id)
			requireOneLineError(t, res.err)
			if !strings.Contains(res.err.Error(), want) {
				t.Errorf("err = %q, want it to contain %q", res.err, want)
			}
		}
	})

	t.Run("AllRepublishesANonJobWithoutDeathHeaders", func(t *testing.T) {
		b := setup(t)
		b.DeadLetterJunk(t)

		wantStdout(t, b.vars, "requeued message junk-1 (not a job; republished the message)\nrequeued 1, skipped 0\n", "dlq", "requeue", "--all")
		testkit.CheckRepublishedJunk(t, b.Get(t, job.QueueGenerate))
		b.WantQueueLen(t, job.QueueDLQ, 0)
	})

	t.Run("AllRepublishesAJobWithoutARow", func(t *testing.T) {
		b := setup(t)
		b.DeadLetter(t, "job-foreign", "delivery_limit", "")
		b.InsertJob(t, "job-x", job.StatusFailed)
		b.DeadLetter(t, "job-x", job.ReasonLLMRejected, "content policy")

		want := "requeued job-foreign (no job row; republished the message)\nrequeued job-x\nrequeued 2, skipped 0\n"
		wantStdout(t, b.vars, want, "dlq", "requeue", "--all")
		if d := b.Get(t, job.QueueGenerate); !strings.Contains(string(d.Body), `"job-foreign"`) {
			t.Errorf("generate queue got %s, want job-foreign's message", d.Body)
		}
		b.WantGenerateRows(t, "job-x", 1)
	})

	t.Run("AllOnAnEmptyDLQ", func(t *testing.T) {
		b := setup(t)
		wantStdout(t, b.vars, "DLQ is empty\n", "dlq", "requeue", "--all")
	})
}
