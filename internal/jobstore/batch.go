package jobstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/outbox"
)

// Defaults of the Batcher (and of Batched).
const (
	// DefaultBatchMax is the most creates (or claims, or completes) one batch commits.
	DefaultBatchMax = 64
	// DefaultBatchesInFlight is how many batch transactions run at once; while they do, the
	// next creates gather for the next batch.
	DefaultBatchesInFlight = 4
	// batchTimeout bounds one batch's statement or transaction.
	batchTimeout = 10 * time.Second
)

// Batcher is a Store whose creates commit together (see group): the creates that arrive
// while every batch transaction is busy share the next one: one multi-row INSERT of the jobs,
// one of their outbox rows, one COMMIT. Each create still answers for itself: a 202 is a
// committed row. A create with a limit to count, a replayed or conflicting idempotency key, or
// a batch that fails as a whole (an unknown user) takes Store.Create's path on its own.
type Batcher struct {
	*Store
	g *group[NewJob, created]
}

type created struct {
	j  Job
	ok bool
}

// NewBatcher batches s's creates, at most maxBatch per transaction and inFlight transactions
// at once. Creates wait for Run to start; after it returns they go one by one.
func NewBatcher(s *Store, maxBatch, inFlight int) *Batcher {
	b := &Batcher{Store: s}
	b.g = newGroup(maxBatch, inFlight, b.commit)
	return b
}

// Create is Store.Create, batched with the creates around it.
func (b *Batcher) Create(ctx context.Context, n NewJob) (Job, bool, error) {
	if n.Limits.counted() {
		return b.Store.Create(ctx, n)
	}
	c, err := b.g.do(ctx, n)
	return c.j, c.ok, err
}

// Run gathers and commits batches until ctx ends, then waits for the batches in flight.
func (b *Batcher) Run(ctx context.Context) error {
	b.g.run(ctx)
	return nil
}

// commit creates batch in one transaction and answers each create; those it could not
// create (see Batcher) take Store.Create's path.
func (b *Batcher) commit(ctx context.Context, batch []NewJob) []answer[created] {
	jobs, err := b.insertBatch(ctx, batch)
	answers := make([]answer[created], len(batch))
	var alone sync.WaitGroup
	for i, n := range batch {
		if j, ok := jobs[n.ID]; ok && err == nil {
			answers[i] = answer[created]{v: created{j: j, ok: true}}
			continue
		}
		alone.Go(func() {
			j, ok, err := b.Store.Create(ctx, n)
			answers[i] = answer[created]{v: created{j: j, ok: ok}, err: err}
		})
	}
	alone.Wait()
	return answers
}

// insertBatch inserts the jobs of batch that conflict with none (ON CONFLICT DO NOTHING: a
// job id or an idempotency key taken) and their outbox rows, and returns them by id.
func (b *Batcher) insertBatch(ctx context.Context, batch []NewJob) (map[string]Job, error) {
	created := make(map[string]Job, len(batch))
	err := b.outboxTx(ctx, func(tx pgx.Tx) error {
		var (
			users                                     []int64
			ids, descs, cvs, tones, keys, hashes, tps []string
		)
		for _, n := range batch {
			ids, users, descs, cvs = append(ids, n.ID), append(users, n.UserID), append(descs, n.JobDescription), append(cvs, n.CVText)
			tones, keys, hashes = append(tones, string(n.Tone)), append(keys, n.IdempotencyKey), append(hashes, n.RequestHash)
			tps = append(tps, n.Headers["traceparent"])
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, idempotency_key, request_hash, traceparent)
			SELECT id, u, d, cv, t, nullif(k, ''), h, tp
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
			     AS n(id, u, d, cv, t, k, h, tp)
			ON CONFLICT DO NOTHING
			RETURNING job_id, status, created_at, updated_at`, ids, users, descs, cvs, tones, keys, hashes, tps)
		if err != nil {
			return err
		}
		byID := make(map[string]NewJob, len(batch))
		for _, n := range batch {
			byID[n.ID] = n
		}
		// What the rows hold but the database chose is read back; the rest is what was sent.
		jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
			var j Job
			if err := r.Scan(&j.ID, &j.Status, &j.CreatedAt, &j.UpdatedAt); err != nil {
				return Job{}, err
			}
			n := byID[j.ID]
			j.UserID, j.JobDescription, j.CVText, j.Tone, j.TraceParent = n.UserID, n.JobDescription, n.CVText, n.Tone, n.Headers["traceparent"]
			return j, nil
		})
		if err != nil {
			return err
		}
		msgs := make([]broker.Message, 0, len(jobs))
		for _, j := range jobs {
			m, err := coverLetterMessage(j, byID[j.ID].Headers)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
			created[j.ID] = j
		}
		if len(msgs) == 0 {
			return nil
		}
		return outbox.InsertMany(ctx, tx, msgs, time.Time{})
	})
	return created, err
}
