package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maxResultBytes bounds a stored result: far more than any letter or report, far less than
// a runaway answer could hold.
const maxResultBytes = 512 << 10

// DefaultRunsInFlight is how many claim statements, and how many complete transactions, a
// Batched runs at once; while they do, the next ones gather for the next batch. One, not two:
// with a second in flight, jobs that end one by one took a transaction each (docs/benchmarks.md).
const DefaultRunsInFlight = 1

// completion is a job's result to store under its lease.
type completion struct {
	Lease
	result  json.RawMessage
	headers map[string]string
}

func newCompletion(l Lease, result json.RawMessage, headers map[string]string) (completion, error) {
	if len(result) > maxResultBytes {
		return completion{}, fmt.Errorf("jobstore: complete %s: the result is %d bytes, more than %d", l.JobID, len(result), maxResultBytes)
	}
	if len(result) == 0 {
		result = json.RawMessage("{}")
	}
	return completion{Lease: l, result: withoutNUL(result), headers: headers}, nil
}

// Batched is Runs whose claims and completes commit together (see group): the claims that
// arrive while its claim statements are busy share the next one (one UPDATE, one commit), and
// so do the completes (one UPDATE of their rows, one INSERT of their announcements, one
// COMMIT). Each still answers for itself, after its commit: the worker acks a message only once
// its result is stored. A redelivered message's claim, or one the batch could not take (a job
// that is not there yet, or not claimable), takes Runs.Claim's path on its own.
type Batched struct {
	*Runs
	claims    *group[ClaimRequest, claimed]
	completes *group[completion, Run]
}

type claimed struct {
	j Run
	l Lease
}

// NewBatched batches r's claims and completes, at most maxBatch per statement or transaction
// and inFlight of each at once. Claims and completes wait for Run to start; after it returns
// they go one by one.
func NewBatched(r *Runs, maxBatch, inFlight int) *Batched {
	return &Batched{
		Runs:      r,
		claims:    newGroup(maxBatch, inFlight, r.claimMany),
		completes: newGroup(maxBatch, inFlight, r.complete),
	}
}

// Claim is Runs.Claim, batched with the claims around it.
func (b *Batched) Claim(ctx context.Context, req ClaimRequest) (Run, Lease, error) {
	if req.Redelivered {
		return b.Runs.Claim(ctx, req)
	}
	c, err := b.claims.do(ctx, req)
	return c.j, c.l, err
}

// Complete is Runs.Complete, batched with the completes around it.
func (b *Batched) Complete(ctx context.Context, l Lease, result json.RawMessage, headers map[string]string) (Run, error) {
	cp, err := newCompletion(l, result, headers)
	if err != nil {
		return Run{}, err
	}
	return b.completes.do(ctx, cp)
}

// Run gathers and commits batches until ctx ends, then waits for the batches in flight.
func (b *Batched) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.claims.run(ctx) })
	b.completes.run(ctx)
	wg.Wait()
	return nil
}

// claimMany claims the jobs of reqs (none redelivered) in one statement; a claim it could not
// take goes Claim's way on its own, with the lease token it was given here (a claim is
// idempotent for its token).
func (r *Runs) claimMany(ctx context.Context, reqs []ClaimRequest) []answer[claimed] {
	ids, tokens, secs, owners := make([]string, len(reqs)), make([]uuid.UUID, len(reqs)), make([]float64, len(reqs)), make([]uuid.UUID, len(reqs))
	for i := range reqs {
		if reqs[i].Token == uuid.Nil {
			reqs[i].Token = uuid.New()
		}
		ids[i], tokens[i], secs[i], owners[i] = reqs[i].Envelope.JobID, reqs[i].Token, reqs[i].LeaseFor.Seconds(), reqs[i].Owner
	}
	taken, err := r.claimBatch(ctx, ids, tokens, secs, owners)
	answers := make([]answer[claimed], len(reqs))
	var alone sync.WaitGroup
	for i, req := range reqs {
		if j, ok := taken[req.Token]; ok && err == nil {
			answers[i].v = claimed{j: j, l: Lease{JobID: j.ID, Token: req.Token}}
			continue
		}
		alone.Go(func() {
			j, l, err := r.Claim(ctx, req)
			answers[i] = answer[claimed]{v: claimed{j: j, l: l}, err: err}
		})
	}
	alone.Wait()
	return answers
}

// claimBatch is claimMany's statement: the jobs it claimed, by their lease token.
//
// It commits without waiting for its WAL flush (synchronous_commit off for its own
// transaction): on a worker's path between two jobs that flush was one of two. The next
// step under each lease (complete, retry, defer, fail) commits with the flush, which covers
// the claim written before it. A PostgreSQL crash in between may undo the claim: the job is
// pending again, that step answers ErrClaimLost, and the worker gives the message back.
func (r *Runs) claimBatch(ctx context.Context, ids []string, tokens []uuid.UUID, secs []float64, owners []uuid.UUID) (map[uuid.UUID]Run, error) {
	rows, err := r.s.pool.Query(ctx, r.sql(strings.NewReplacer(
		"{from}", `FROM unnest($1::text[], $2::uuid[], $3::float8[], $4::uuid[]) AS c(c_job_id, c_token, c_secs, c_owner),
			(SELECT set_config('synchronous_commit', 'off', true)) AS async(c_async)`,
		"{job}", "c_job_id", "{token}", "c_token", "{secs}", "c_secs", "{owner}", "c_owner", "{redelivered}", "false", "{deadAfter}", "0",
	).Replace(claimSQL)+` RETURNING c_token, {cols}`), ids, tokens, secs, owners)
	if err != nil {
		return nil, err
	}
	taken := make(map[uuid.UUID]Run, len(ids))
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var token uuid.UUID
		j, err := scanRun(row, &token)
		taken[token] = j
		return struct{}{}, err
	})
	return taken, err
}

// complete stores the results of cs whose lease holds and announces them, in one
// transaction; a complete whose lease is gone gets ErrLeaseLost (ErrClaimLost if its job is
// pending again). If the batch fails as a whole,
// each of its completes is tried on its own, so that one cannot fail the others.
func (r *Runs) complete(ctx context.Context, cs []completion) []answer[Run] {
	answers := make([]answer[Run], len(cs))
	stored, err := r.storeResults(ctx, cs)
	if err != nil && len(cs) > 1 {
		var alone sync.WaitGroup
		for i, c := range cs {
			alone.Go(func() { answers[i] = r.complete(ctx, []completion{c})[0] })
		}
		alone.Wait()
		return answers
	}
	for i, c := range cs {
		j, ok := stored[c.JobID]
		switch {
		case err != nil:
			answers[i].err = leaseErr("complete", c.Lease, err)
		case !ok:
			answers[i].err = leaseErr("complete", c.Lease, r.lost(ctx, r.s.pool, c.JobID))
		default:
			answers[i].v = j
		}
	}
	return answers
}

// storeResults is complete's transaction: the jobs it completed, by id.
func (r *Runs) storeResults(ctx context.Context, cs []completion) (map[string]Run, error) {
	ids, tokens, results := make([]string, len(cs)), make([]uuid.UUID, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		ids[i], tokens[i], results[i] = c.JobID, c.Token, string(c.result)
	}
	stored := make(map[string]Run, len(cs))
	err := r.s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, r.sql(`
			UPDATE {t}
			SET `+strings.ReplaceAll(r.k.Table.Store, "{result}", "c_result")+`, status = 'completed', error_message = NULL,
			    completed_at = now(), lease_token = NULL, lease_expires_at = NULL, updated_at = now()
			FROM unnest($1::text[], $2::uuid[], $3::jsonb[]) AS c(c_job_id, c_token, c_result)
			WHERE job_id = c_job_id AND lease_token = c_token AND status = 'processing'
			RETURNING {cols}`), ids, tokens, results)
		if err != nil {
			return err
		}
		jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Run, error) { return scanRun(row) })
		if err != nil {
			return err
		}
		finals := make([]Final, 0, len(jobs))
		for _, j := range jobs {
			stored[j.ID] = j
		}
		for _, c := range cs { // in the order they came
			if j, ok := stored[c.JobID]; ok {
				finals = append(finals, Final{j, c.headers})
			}
		}
		return r.finished(ctx, tx, finals...)
	})
	return stored, err
}
