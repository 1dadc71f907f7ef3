package jobstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

// runBatched runs a Batched of s's cover letters with one statement or transaction of each
// in flight until the test ends.
func runBatched(t *testing.T, s store) *jobstore.Batched {
	t.Helper()
	return runUntilCleanup(t, jobstore.NewBatched(s.Runs, 64, 1))
}

// Concurrent completes commit together (a transaction's jobs share its now()), each job with
// its own letter and announcement, and each complete answers for itself: a lost lease is
// ErrLeaseLost, and the others are stored all the same.
func TestBatchedCommitsCompletesTogether(t *testing.T) {
	s, tb, ctx := setup(t)
	c := runBatched(t, s)
	const n = 100
	leases := make([]jobstore.Lease, n)
	for i := range n {
		leases[i] = claim(t, s, tb.create(t, s, fmt.Sprintf("job-%d", i)))
	}
	lost := leases[7]
	lost.Token = uuid.New() // another worker's lease: not ours to complete
	leases[7] = lost
	var wg sync.WaitGroup
	for i, l := range leases {
		wg.Go(func() {
			want := fmt.Sprintf("letter %d", i)
			j, err := c.Complete(ctx, l, letter(jobstore.CoverLetterResult{CoverLetter: want, Model: "m"}),
				map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
			switch {
			case i == 7:
				if !errors.Is(err, jobstore.ErrLeaseLost) {
					t.Errorf("complete with a lost lease = %v, want ErrLeaseLost", err)
				}
			case err != nil || j.ID != l.JobID || j.Status != job.StatusCompleted || j.CompletedAt == nil:
				t.Errorf("complete %d = %+v, %v", i, j, err)
			}
		})
	}
	wg.Wait()
	var completed, letters, messages, transactions int
	if err := tb.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE status = 'completed'),
		       count(*) FILTER (WHERE cover_letter = 'letter ' || substr(job_id, 5)),
		       (SELECT count(*) FROM outbox_messages WHERE routing_key = $1 AND headers ? 'traceparent'),
		       count(DISTINCT completed_at)
		FROM cover_letter_jobs`, job.QueueCompleted).Scan(&completed, &letters, &messages, &transactions); err != nil {
		t.Fatal(err)
	}
	if completed != n-1 || letters != n-1 || messages != n-1 {
		t.Fatalf("%d completed, %d with their letter, %d announced; want %d each", completed, letters, messages, n-1)
	}
	if transactions > n/4 {
		t.Fatalf("%d completes took %d transactions: not batched", n, transactions)
	}
	t.Logf("%d completes in %d transactions", n, transactions)
}

// A complete that fails its batch (here: its user's announcement cannot be written) fails
// alone; the others of its batch are stored.
func TestBatchedIsolatesAFailingComplete(t *testing.T) {
	s, tb, ctx := setup(t)
	if _, err := tb.pool.Exec(ctx, `
		CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.message_id = 'bad/completed' THEN RAISE EXCEPTION 'refused'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_bad BEFORE INSERT ON outbox_messages FOR EACH ROW EXECUTE FUNCTION refuse_bad()`); err != nil {
		t.Fatal(err)
	}
	c := runBatched(t, s)
	ids := []string{"bad"}
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("good-%d", i))
	}
	leases := make(map[string]jobstore.Lease)
	for _, id := range ids {
		leases[id] = claim(t, s, tb.create(t, s, id))
	}
	var wg sync.WaitGroup
	for id, l := range leases {
		wg.Go(func() {
			_, err := c.Complete(ctx, l, letter(jobstore.CoverLetterResult{CoverLetter: "x"}), nil)
			if (id == "bad") != (err != nil) {
				t.Errorf("complete %s = %v", id, err)
			}
		})
	}
	wg.Wait()
	var completed int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FROM cover_letter_jobs WHERE status = 'completed'`).Scan(&completed); err != nil || completed != 20 {
		t.Fatalf("%d completed (%v), want the 20 good ones", completed, err)
	}
}

// Concurrent claims share statements (a statement's claims share its now()), each with its
// own lease; a claim the batch cannot take gets Claim's answer: a job not there yet is created
// from its message, a second claim of a claimed job is not claimable.
func TestBatchedClaimsTogether(t *testing.T) {
	s, tb, ctx := setup(t)
	b := runBatched(t, s)
	const n = 100
	reqs := make([]jobstore.ClaimRequest, 0, n+2)
	for i := range n {
		reqs = append(reqs, claimOf(msgFor(tb.create(t, s, fmt.Sprintf("job-%d", i))), false, time.Minute))
	}
	foreign := claimOf(job.GenerateMessage{JobID: "foreign", UserID: tb.user, JobDescription: "x", CVText: "y"}, false, time.Minute)
	reqs = append(reqs, foreign, claimOf(msgFor(tb.create(t, s, "twice")), false, time.Minute))
	if _, _, err := s.Claim(ctx, reqs[len(reqs)-1]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	leases := make([]jobstore.Lease, len(reqs))
	for i, req := range reqs {
		wg.Go(func() {
			j, l, err := b.Claim(ctx, req)
			leases[i] = l
			switch {
			case req.Envelope.JobID == "twice":
				if !errors.Is(err, jobstore.ErrNotClaimable) {
					t.Errorf("a second claim = %v, want ErrNotClaimable", err)
				}
			case err != nil || j.ID != req.Envelope.JobID || l.JobID != j.ID || j.Status != job.StatusProcessing || j.Attempts != 1:
				t.Errorf("claim %s = %+v, %+v, %v", req.Envelope.JobID, j, l, err)
			}
		})
	}
	wg.Wait()
	tokens := map[uuid.UUID]bool{}
	for _, l := range leases[:n+1] {
		tokens[l.Token] = true
	}
	var held, statements int
	if err := tb.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE lease_token IS NOT NULL), count(DISTINCT started_at)
		FROM cover_letter_jobs WHERE job_id LIKE 'job-%'`).Scan(&held, &statements); err != nil {
		t.Fatal(err)
	}
	if held != n || len(tokens) != n+1 {
		t.Fatalf("%d jobs held, %d distinct leases; want %d and %d", held, len(tokens), n, n+1)
	}
	if statements > n/4 {
		t.Fatalf("%d claims took %d statements: not batched", n, statements)
	}
	t.Logf("%d claims in %d statements", n, statements)
	// The leases are the ones stored: each completes.
	for _, l := range leases[:n] {
		if _, err := b.Complete(ctx, l, letter(jobstore.CoverLetterResult{CoverLetter: "x"}), nil); err != nil {
			t.Fatalf("complete %s: %v", l.JobID, err)
		}
	}
}

// A batched claim commits without waiting for its WAL flush, so a PostgreSQL crash may undo
// it: the job is pending again, as before its claim. A step under that lease then answers
// ErrClaimLost (the worker gives its message back: no other may exist), not ErrLeaseLost
// (another holds the job: the worker drops its message).
func TestAStepWhoseClaimWasUndoneSaysSo(t *testing.T) {
	s, tb, ctx := setup(t)
	c := runBatched(t, s)
	steps := map[string]func(jobstore.Lease) error{
		"complete": func(l jobstore.Lease) error {
			_, err := c.Complete(ctx, l, letter(jobstore.CoverLetterResult{CoverLetter: "x"}), nil)
			return err
		},
		"retry": func(l jobstore.Lease) error {
			_, err := c.Retry(ctx, l, "boom", time.Now(), nil)
			return err
		},
		"defer": func(l jobstore.Lease) error {
			_, err := c.Defer(ctx, l, time.Now(), nil)
			return err
		},
		"fail": func(l jobstore.Lease) error {
			_, err := c.Fail(ctx, l, "boom", nil, jobstore.DeadLetter{Body: []byte("{}"), Reason: "test"})
			return err
		},
	}
	for name, step := range steps {
		j := tb.create(t, s, "job-"+name)
		_, l, err := c.Claim(ctx, claimOf(msgFor(j), false, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		testkit.UndoClaim(t, tb.pool, j.ID)
		if err := step(l); !errors.Is(err, jobstore.ErrClaimLost) {
			t.Errorf("%s after the claim was undone = %v, want ErrClaimLost", name, err)
		}
		// Held by another, it is still ErrLeaseLost.
		if _, _, err := c.Claim(ctx, claimOf(msgFor(j), false, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := step(l); !errors.Is(err, jobstore.ErrLeaseLost) {
			t.Errorf("%s with another's lease = %v, want ErrLeaseLost", name, err)
		}
	}
}
