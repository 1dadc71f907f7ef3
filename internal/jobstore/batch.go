package jobstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
)

// Defaults of the Batcher (and of Batched).
const (
	// DefaultBatchMax is the most creates (or claims, or completes) one batch commits.
	DefaultBatchMax = 64
	// DefaultBatchesInFlight is how many batch transactions run at once; while they do, the
	// next creates gather for the next batch.
	DefaultBatchesInFlight = 2
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
// job id or an idempotency key taken) and their outbox rows, in one statement (one round
// trip, its own transaction), and returns them by id. The jobs' created_at is the api's clock,
// so that each message, made before the statement, carries its row's time.
func (b *Batcher) insertBatch(ctx context.Context, batch []NewJob) (map[string]Job, error) {
	now := time.Now().UTC().Truncate(time.Microsecond) // as PostgreSQL keeps it
	var (
		users                                     []int64
		ids, descs, cvs, tones, keys, hashes, tps []string
		msgs                                      = make([]broker.Message, len(batch))
		jobs                                      = make(map[string]Job, len(batch))
		at                                        = make(map[string]int, len(batch)) // a job's message in msgs
	)
	for i, n := range batch {
		j := Job{ID: n.ID, UserID: n.UserID, Status: job.StatusPending, JobDescription: n.JobDescription, CVText: n.CVText,
			Tone: n.Tone, TraceParent: n.Headers["traceparent"], CreatedAt: now, UpdatedAt: now}
		m, err := coverLetterMessage(j, n.Headers)
		if err != nil {
			return nil, err
		}
		msgs[i], jobs[j.ID], at[j.ID] = m, j, i
		ids, users, descs, cvs = append(ids, n.ID), append(users, n.UserID), append(descs, n.JobDescription), append(cvs, n.CVText)
		tones, keys, hashes = append(tones, string(n.Tone)), append(keys, n.IdempotencyKey), append(hashes, n.RequestHash)
		tps = append(tps, j.TraceParent)
	}
	out, err := outbox.ColumnsOf(msgs)
	if err != nil {
		return nil, err
	}
	rows, err := b.pool.Query(ctx, `
		WITH n AS (
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			                     $10::text[], $11::text[], $12::text[], $13::jsonb[], $14::bytea[])
			       AS n(id, u, d, cv, t, k, h, tp, e, rk, mid, hd, b)
		), j AS (
			INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, idempotency_key, request_hash, traceparent,
			                               created_at, updated_at)
			SELECT id, u, d, cv, t, nullif(k, ''), h, tp, $9::timestamptz, $9::timestamptz FROM n
			ON CONFLICT DO NOTHING
			RETURNING job_id
		), o AS (
			INSERT INTO outbox_messages (exchange, routing_key, message_id, headers, body, available_at)
			SELECT n.e, n.rk, n.mid, n.hd, n.b, now() + make_interval(secs => $15) FROM n JOIN j ON j.job_id = n.id
			RETURNING id, message_id
		)
		SELECT n.id, o.id FROM o JOIN n ON n.mid = o.message_id`, ids, users, descs, cvs, tones, keys, hashes, tps, now,
		out.Exchanges, out.RoutingKeys, out.MessageIDs, out.Headers, out.Bodies, b.handoff.Hold().Seconds())
	if err != nil {
		return nil, err
	}
	var (
		created = make(map[string]Job, len(batch))
		handed  = make([]outbox.Row, 0, len(batch))
		id      string
		row     int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &row}, func() error {
		created[id] = jobs[id]
		handed = append(handed, outbox.Row{ID: row, Message: msgs[at[id]]})
		return nil
	}); err != nil {
		return nil, err
	}
	b.handOver(handed)
	return created, nil
}

// handOver gives committed outbox rows to the hand-off, or wakes the relay. Rows the
// hand-off's full queue refuses are the relays' once due.
func (b *Batcher) handOver(rows []outbox.Row) {
	switch {
	case len(rows) == 0:
	case b.handoff != nil:
		b.handoff.Send(rows)
	default:
		b.outboxWrote()
	}
}
