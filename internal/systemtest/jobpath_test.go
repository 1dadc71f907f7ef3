package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
)

// TestJobPathCompletesFiftyJobsForTwoUsers is the whole path: POST → 202 at once → the worker
// writes the letter → status shows it → the list pages through it, newest first.
func TestJobPathCompletesFiftyJobsForTwoUsers(t *testing.T) {
	t.Parallel()
	b := setup(t, options{concurrency: 8})
	alice, bob := b.user("alice@example.com"), b.user("bob@example.com")

	// 202 at once: no LLM call in the request path. Every LLM call waits until all 50 POSTs
	// are answered, so a POST that waited for one would never be. (That a user's posts do not
	// queue behind one another is TestCreateWithoutLimitsTakesNoUserLock's.)
	b.llmHold.Lock()
	release := sync.OnceFunc(b.llmHold.Unlock)
	defer release()
	var (
		mu  sync.Mutex
		ids = map[string][]string{}
		wg  sync.WaitGroup
	)
	for i := range 50 {
		token, who := alice, "alice"
		if i%2 == 1 {
			token, who = bob, "bob"
		}
		wg.Go(func() {
			id := b.submit(token, fmt.Sprintf("Senior Go Engineer #%d at Acme Corp\nWe need Kubernetes and PostgreSQL.", i),
				"Jane Doe\nEight years building Go services with PostgreSQL.", "friendly")
			mu.Lock()
			ids[who] = append(ids[who], id)
			mu.Unlock()
		})
	}
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	select {
	case <-answered:
		release()
	case <-time.After(60 * time.Second):
		t.Fatal("the POSTs were not answered within 60 s while the LLM held its calls")
	}

	for who, list := range ids {
		token := map[string]string{"alice": alice, "bob": bob}[who]
		for _, id := range list {
			j := b.waitFinal(id, 60*time.Second)
			if j.Status != "completed" {
				t.Fatalf("job %s ended %s: %s", id, j.Status, j.Error)
			}
			v := b.status(token, id)
			if v.Status != "completed" || !strings.Contains(v.CoverLetter, "Acme") || v.CompletedAt == nil || v.Attempts != 1 || v.Tone != "friendly" {
				t.Fatalf("status of %s = %+v", id, v)
			}
			if j.PromptTokens <= 0 || j.CompletionTokens <= 0 || j.Model != "fake-gpt" {
				t.Fatalf("job %s stored usage %d/%d model %q", id, j.PromptTokens, j.CompletionTokens, j.Model)
			}
		}
	}
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs WHERE status = 'completed'`); n != 50 {
		t.Fatalf("%d completed jobs, want 50", n)
	}
	if n := int(b.llm.Stats().Completed); n != 50 {
		t.Fatalf("the LLM wrote %d letters for 50 jobs", n)
	}
	// One completion message per job, and the outbox drains.
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)

	// The list: newest first, paged by cursor, only the caller's jobs.
	var seen []job.View
	cursor := ""
	for page := 0; ; page++ {
		r := b.do("GET", "/api/cover-letter/jobs?limit=10&cursor="+cursor, alice, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list = %d %s", r.Status, r.Body)
		}
		var out struct {
			Jobs       []job.View `json:"jobs"`
			NextCursor string     `json:"nextCursor"`
		}
		r.json(t, &out)
		seen = append(seen, out.Jobs...)
		if out.NextCursor == "" {
			break
		}
		if page > 5 {
			t.Fatal("the list does not end")
		}
		cursor = out.NextCursor
	}
	if len(seen) != 25 {
		t.Fatalf("alice sees %d jobs, want 25", len(seen))
	}
	mine := map[string]bool{}
	for _, id := range ids["alice"] {
		mine[id] = true
	}
	for i, v := range seen {
		if !mine[v.JobID] {
			t.Fatalf("alice's list has job %s that is not hers", v.JobID)
		}
		if i > 0 && v.CreatedAt.After(seen[i-1].CreatedAt) {
			t.Fatalf("list not newest first at %d", i)
		}
	}
	r := b.do("GET", "/api/cover-letter/jobs?status=pending", alice, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"jobs":[]`) {
		t.Fatalf("pending filter = %d %s", r.Status, r.Body)
	}
}

// TestUsersSeeOnlyTheirOwnJobs: another user's job is 404 and absent from lists.
func TestUsersSeeOnlyTheirOwnJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	alice, bob := b.user("a@example.com"), b.user("b@example.com")
	id := b.submit(alice, "Data Analyst at Globex", "SQL and Python", "")
	b.waitFinal(id, 30*time.Second)

	if r := b.do("GET", "/api/cover-letter/status/"+id, bob, nil); r.Status != http.StatusNotFound ||
		!strings.Contains(string(r.Body), `"code":"not_found"`) {
		t.Fatalf("bob reading alice's job = %d %s, want 404", r.Status, r.Body)
	}
	r := b.do("GET", "/api/cover-letter/jobs", bob, nil)
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), id) {
		t.Fatalf("bob's list = %d %s", r.Status, r.Body)
	}
	if v := b.status(alice, id); v.Status != "completed" || v.Tone != "professional" {
		t.Fatalf("alice's job = %+v", v)
	}
}

// TestIdempotencyKeyReplaysTheSameJob: the same key and body give the same job once; the same
// key with another body is a conflict; another user's same key is a different job.
func TestIdempotencyKeyReplaysTheSameJob(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	alice, bob := b.user("a@example.com"), b.user("b@example.com")
	body := jobBody("Backend Engineer at Initech", "Go, Rust", "concise")

	first := b.do("POST", "/api/cover-letter", alice, body, "Idempotency-Key", "order-42")
	again := b.do("POST", "/api/cover-letter", alice, body, "Idempotency-Key", "order-42")
	if first.Status != http.StatusAccepted || again.Status != http.StatusOK {
		t.Fatalf("first = %d, replay = %d; want 202 then 200", first.Status, again.Status)
	}
	var a, c struct{ JobID string }
	first.json(t, &a)
	again.json(t, &c)
	if a.JobID != c.JobID || again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("replay gave job %s, first %s", c.JobID, a.JobID)
	}
	if r := b.do("POST", "/api/cover-letter", alice, jobBody("Other job", "Go", ""), "Idempotency-Key", "order-42"); r.Status != http.StatusConflict {
		t.Fatalf("reused key with a new body = %d %s, want 409", r.Status, r.Body)
	}
	other := b.do("POST", "/api/cover-letter", bob, body, "Idempotency-Key", "order-42")
	var o struct{ JobID string }
	other.json(t, &o)
	if other.Status != http.StatusAccepted || o.JobID == a.JobID {
		t.Fatalf("bob's request with alice's key = %d %s", other.Status, other.Body)
	}
	b.waitFinal(a.JobID, 30*time.Second)
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs WHERE user_id = (SELECT user_id FROM cover_letter_jobs WHERE job_id = $1)`, a.JobID); n != 1 {
		t.Fatalf("alice has %d jobs after a replay, want 1", n)
	}
	_ = context.Background()
}
