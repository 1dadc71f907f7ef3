package systemtest

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// "My data", end to end on two api replicas and a worker: a user exports their data (JSON and
// a ZIP of their letters), then erases themselves while a letter of theirs is being written
// and more are being asked for. The running letter's LLM call is abandoned, nothing of theirs
// is left in any table, their token answers 401 on both replicas at once (each had it cached),
// a later message of theirs is dropped (not dead-lettered with their data), and a second
// user's jobs, export and token are untouched.
func TestExportThenEraseLeavesNothingAndAnotherUserUntouched(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	one := b.api()
	b.startAPI(b.amqpURL) // a second replica on the same database
	two := b.api()
	ctx := context.Background()
	adaID, bobID := b.userID("ada@example.org"), b.userID("bob@example.org")
	ada, bob := issue(t, adaID), issue(t, bobID)

	for _, token := range []string{ada, bob} {
		b.waitFinal(b.submit(token, "Go developer", "Ten years of Go.", ""), 30*time.Second)
	}
	adaExport, bobExport := b.export(one, ada), b.export(two, bob)
	r, err := one.DownloadExport(ctx, ada, adaExport.ID, "zip")
	if err != nil || !strings.Contains(r.Header.Get("Content-Disposition"), ".zip") {
		t.Fatalf("ada's ZIP: %v %v", err, r)
	}
	if zr, err := zip.NewReader(bytes.NewReader(r.Body), int64(len(r.Body))); err != nil || len(zr.File) != 2 {
		t.Fatalf("ada's ZIP does not hold her letter and a README: %v", err)
	}
	if _, err := two.Export(ctx, bob, adaExport.ID); apiclient.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("bob reads ada's export: %v, want 404", err)
	}

	// A letter being written when the erasure comes.
	if err := b.llm.SetFaults(fakeopenai.Faults{Latency: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	running := b.submit(ada, "Rust developer", "Five years of Rust.", "")
	b.waitStatus(ada, running, 10*time.Second, job.StatusProcessing)
	for _, c := range []*apiclient.Client{one, two} { // both replicas know ada now
		if _, err := c.List(ctx, ada, apiclient.ListQuery{}); err != nil {
			t.Fatal(err)
		}
	}

	// More letters asked for while she is erased: none may survive.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range []*apiclient.Client{one, two} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Create(ctx, ada, job.CreateRequest{JobDescription: "racing", CVText: "racing"}, "")
				if apiclient.StatusOf(err) == http.StatusUnauthorized {
					return
				}
			}
		}()
	}
	// Her usage rolled up by user, beside the totals of all users (user_id 0): hers go, the
	// anonymous totals stay.
	if _, err := b.pool.Exec(ctx, `
		INSERT INTO usage_rollups (grain, bucket, user_id, kind, model, outcome, jobs, prompt_tokens, completion_tokens,
		                           cost_micros, retries, p50_ms, p95_ms)
		SELECT 'day', date_trunc('day', now()), u, 'cover-letter.generate', '*', 'completed', 1, 10, 20, 30, 0, 1, 2
		FROM unnest(ARRAY[$1::bigint, 0]) AS u`, adaID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	erased := time.Now()
	if err := one.EraseMe(ctx, ada); err != nil {
		t.Fatalf("DELETE /api/me: %v", err)
	}
	for _, c := range []*apiclient.Client{one, two} {
		accepted := 0 // requests the token still opened after the erasure answered
		testkit.Eventually(t, 2*time.Second, func() bool {
			_, err := c.List(ctx, ada, apiclient.ListQuery{})
			if err == nil {
				accepted++
			}
			return apiclient.StatusOf(err) == http.StatusUnauthorized
		}, "ada's token still works on "+c.BaseURL())
		t.Logf("%s refuses ada's token %s after the erasure answered, having accepted it %d times since", c.BaseURL(),
			time.Since(erased), accepted)
		if c == one && accepted > 0 {
			t.Errorf("the replica that erased ada accepted her token %d times after", accepted)
		}
	}
	close(stop)
	wg.Wait()
	if err := two.EraseMe(ctx, ada); apiclient.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a second DELETE /api/me with the old token: %v, want 401", err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return b.llm.Stats().Canceled >= 1 },
		"the running letter's LLM call was not abandoned")

	// Another service's message for ada, after her erasure: dropped, neither a job nor a dead
	// letter holding her CV.
	ch := testkit.Channel(t, b.amqpURL)
	if err := ch.PublishWithContext(ctx, "", job.QueueGenerate, false, false, amqp.Publishing{ContentType: "application/json",
		DeliveryMode: amqp.Persistent, Body: testkit.GenerateBody(t, "late-for-ada", adaID)}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return strings.Contains(b.logs.String(), "a message of an erased user dropped") },
		"the late message was not dropped")
	dlqDepth(t, b.amqpURL, 0)
	for _, q := range []string{
		`SELECT count(*) FROM users WHERE id = $1`, `SELECT count(*) FROM cover_letter_jobs WHERE user_id = $1`,
		`SELECT count(*) FROM jobs WHERE user_id = $1`, `SELECT count(*) FROM exports WHERE user_id = $1`,
		`SELECT count(*) FROM email_deliveries WHERE user_id = $1`, `SELECT count(*) FROM usage_rollups WHERE user_id = $1`,
	} {
		if n := b.count(q, adaID); n != 0 {
			t.Errorf("%s = %d after the erasure", q, n)
		}
	}
	if n := b.count(`SELECT count(*) FROM usage_rollups WHERE user_id = 0`); n != 1 {
		t.Errorf("%d rollups of all users after the erasure, want the one", n)
	}
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs WHERE job_id = $1`, running); n != 0 {
		t.Errorf("the running letter came back")
	}

	// Bob is untouched.
	if n := b.count(`SELECT count(*) FROM cover_letter_jobs WHERE user_id = $1 AND status = 'completed'`, bobID); n != 1 {
		t.Errorf("bob has %d completed letters, want 1", n)
	}
	for _, c := range []*apiclient.Client{one, two} {
		if e, err := c.Export(ctx, bob, bobExport.ID); err != nil || e.Status != job.ExportReady {
			t.Errorf("bob's export on %s: %+v %v", c.BaseURL(), e, err)
		}
	}
}

// userID adds a user and returns its id.
func (b *bundle) userID(email string) int64 {
	b.t.Helper()
	id, err := b.store.AddUser(context.Background(), email)
	if err != nil {
		b.t.Fatal(err)
	}
	return id
}

// export asks c for an export of token's user and waits until it is ready.
func (b *bundle) export(c *apiclient.Client, token string) job.Export {
	b.t.Helper()
	e, err := c.RequestExport(context.Background(), token)
	if err != nil {
		b.t.Fatalf("POST /api/me/export: %v", err)
	}
	testkit.Eventually(b.t, 20*time.Second, func() bool {
		e, err = c.Export(context.Background(), token, e.ID)
		return err == nil && e.Status == job.ExportReady
	}, "the export is not ready")
	if e.Downloads == nil || e.Sizes == nil || e.Sizes.JSON == 0 {
		b.t.Fatalf("a ready export without its files: %+v", e)
	}
	return e
}
