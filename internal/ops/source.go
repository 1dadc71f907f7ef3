// Package ops gathers what the operations page shows (queue depths and consumers, jobs by
// status, recent failures, the dead-letter queue) and requeues dead letters, from RabbitMQ and
// PostgreSQL.
package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sync/errgroup"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/pause"
	"github.com/careerops/jobs/internal/schedule"
)

// inspectors is how many channels the queues are inspected on at once. They stay open between
// calls: opening and closing one costs two round trips, more than the inspection itself (nine
// queues inspected one after another on a new channel were most of the ops overview's time).
const inspectors = 3

// channelTimeout bounds the wait for a channel: while RabbitMQ is down the page should say so
// at once, not hang.
const channelTimeout = 3 * time.Second

// QueueStat is one queue of the topology as RabbitMQ reports it.
type QueueStat struct {
	Name string
	// Messages counts the messages ready for delivery (not those delivered and unacked).
	Messages int
	// Consumers counts the consumers subscribed to it.
	Consumers int
}

// Source reads the system's state for the operations page and requeues dead letters. Each call
// uses a channel of its own, closed before it returns. It is safe for concurrent use.
type Source struct {
	conn  *broker.Connection
	store *jobstore.Store

	// mu is held while listing the DLQ, until RabbitMQ has its messages back, and while
	// counting it: one listing at a time, and no count of a DLQ a listing holds.
	mu     sync.Mutex
	listed *listing // the last listing of the DLQ; nil: none

	idleMu sync.Mutex
	idle   []*amqp.Channel // open channels for inspections, at most inspectors
}

// listing is a listing of the DLQ and what it was taken for.
type listing struct {
	ready   int // the DLQ's ready messages just before
	limit   int
	entries []dlq.Entry
}

// NewSource returns a Source on conn and store.
func NewSource(conn *broker.Connection, store *jobstore.Store) *Source {
	return &Source{conn: conn, store: store}
}

// QueueStats reports the queues of broker.Topology of every kind, in its order. A queue not
// declared yet is left out. The queues are inspected on inspectors channels at once.
func (s *Source) QueueStats(ctx context.Context) ([]QueueStat, error) {
	queues := broker.Topology(job.Kinds())
	stats := make([]*QueueStat, len(queues))
	g, ctx := errgroup.WithContext(ctx)
	for w := range min(inspectors, len(queues)) {
		g.Go(func() (err error) {
			for i := w; i < len(queues) && err == nil; i += inspectors {
				stats[i], err = s.count(ctx, queues[i].Name)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]QueueStat, 0, len(stats))
	for _, st := range stats {
		if st != nil {
			out = append(out, *st)
		}
	}
	return out, nil
}

// count is inspect, but waits for a listing of the DLQ to end (see mu).
func (s *Source) count(ctx context.Context, queue string) (*QueueStat, error) {
	if queue == job.QueueDLQ {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	return s.inspect(ctx, queue)
}

// inspect reads one queue's counts (a passive declare) on an idle channel, kept open for the
// next; nil if the queue is not declared.
func (s *Source) inspect(ctx context.Context, queue string) (*QueueStat, error) {
	ch, err := s.idleChannel(ctx)
	if err != nil {
		return nil, err
	}
	info, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return nil, nil // RabbitMQ closed the channel
	}
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("ops: inspect queue %s: %w", queue, err)
	}
	s.putIdle(ch)
	return &QueueStat{Name: queue, Messages: info.Messages, Consumers: info.Consumers}, nil
}

// idleChannel takes an open idle channel, or opens one.
func (s *Source) idleChannel(ctx context.Context) (*amqp.Channel, error) {
	s.idleMu.Lock()
	for len(s.idle) > 0 {
		ch := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if !ch.IsClosed() { // else the connection died since
			s.idleMu.Unlock()
			return ch, nil
		}
	}
	s.idleMu.Unlock()
	return s.channel(ctx)
}

// putIdle keeps ch for the next inspection, or closes it when inspectors are idle already.
func (s *Source) putIdle(ch *amqp.Channel) {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if len(s.idle) < inspectors {
		s.idle = append(s.idle, ch)
		return
	}
	_ = ch.Close()
}

// Tables is what the operations page reads from PostgreSQL besides the schedules.
type Tables struct {
	// JobsByStatus counts the cover-letter jobs by status (see jobstore.CountByStatus).
	JobsByStatus jobstore.StatusCounts
	// JobsByKind counts the jobs of the kinds in the shared jobs table by kind and status (see
	// jobstore.CountKinds).
	JobsByKind map[string]map[job.Status]int
	// RecentFailures are the last failed jobs of any user, the latest first.
	RecentFailures []jobstore.Failure
	// Outbox is the outbox's backlog, parked messages included.
	Outbox outbox.Backlog
}

// Tables reads the Tables, with at most failures recent failures, in one round trip on one
// connection: its four statements run one after another in one backend. (Four connections
// at once, one per statement, made the overview's slowest answers on a 2-core machine.)
func (s *Source) Tables(ctx context.Context, failures int) (Tables, error) {
	var t Tables
	b := &pgx.Batch{}
	jobstore.QueueCountByStatus(b, &t.JobsByStatus)
	jobstore.QueueCountKinds(b, &t.JobsByKind)
	jobstore.QueueRecentFailures(b, failures, &t.RecentFailures)
	outbox.QueueBacklog(b, &t.Outbox)
	return t, s.store.Pool().SendBatch(ctx, b).Close()
}

// Schedules reports the scheduled tasks: when each runs next, and how it last ran.
func (s *Source) Schedules(ctx context.Context) ([]schedule.Status, error) {
	return schedule.List(ctx, s.store.Pool(), kinds.StoreSpec)
}

// DeadLetters lists the first limit messages of the dead-letter queue (1..dlq.MaxList), which
// stay there.
//
// A listing takes the messages and gives them back, which RabbitMQ counts as a delivery of
// each; RabbitMQ 4.0 to 4.2 drop a quorum-queue message after 20 by default. A page polling
// the overview would thus empty the DLQ, so the last listing is answered again while the DLQ
// holds as many ready messages as then, until a requeue through this Source.
func (s *Source) DeadLetters(ctx context.Context, limit int) ([]dlq.Entry, error) {
	if limit < 1 || limit > dlq.MaxList {
		return nil, fmt.Errorf("ops: list dead letters: %w: %d", dlq.ErrBadLimit, limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.inspect(ctx, job.QueueDLQ)
	if err != nil || q == nil { // nil: not declared yet
		return nil, err
	}
	if l := s.listed; l != nil && l.ready == q.Messages && l.limit == limit {
		return slices.Clone(l.entries), nil
	}
	var entries []dlq.Entry
	if q.Messages > 0 {
		if entries, err = s.listDLQ(ctx, limit); err != nil {
			return nil, err
		}
		s.awaitReturned(ctx, q.Messages)
	}
	s.listed = &listing{ready: q.Messages, limit: limit, entries: entries}
	return slices.Clone(entries), nil
}

// returnWait bounds how long a listing waits for RabbitMQ to count its messages back.
const returnWait = time.Second

// awaitReturned waits, up to returnWait, until the DLQ holds ready messages again. Closing a
// listing's channel gives its messages back, but RabbitMQ counts them back asynchronously (a
// quorum queue: once its log has the return); a count in between would say they are gone.
// Fewer for longer means someone else took some: it stops waiting.
func (s *Source) awaitReturned(ctx context.Context, ready int) {
	ctx, cancel := context.WithTimeout(ctx, returnWait)
	defer cancel()
	for {
		q, err := s.inspect(ctx, job.QueueDLQ)
		if err != nil || q == nil || q.Messages >= ready || pause.For(ctx, 2*time.Millisecond) != nil {
			return
		}
	}
}

// listDLQ lists the first limit dead letters on a channel of its own, whose close gives them
// back.
func (s *Source) listDLQ(ctx context.Context, limit int) ([]dlq.Entry, error) {
	ch, err := s.channel(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = ch.Close() }()
	entries, _, err := dlq.List(ctx, ch, job.QueueGenerate, limit)
	if err != nil {
		return nil, fmt.Errorf("ops: list dead letters: %w", err)
	}
	return entries, nil
}

// RequeueDeadLetters sends the dead letters of target back to work, as dlq.Requeue does; a
// target job that is neither in the DLQ nor failed is a *dlq.NotRequeuedError.
func (s *Source) RequeueDeadLetters(ctx context.Context, target dlq.Target) (dlq.Result, error) {
	ch, err := s.channel(ctx)
	if err != nil {
		return dlq.Result{}, err
	}
	defer func() { _ = ch.Close() }() // returns other jobs' messages to the DLQ
	defer s.forgetListing()
	res, err := dlq.Requeue(ctx, ch, s.store.Runs(jobstore.CoverLetters(jobstore.Limits{}, nil)), target, nil)
	if err != nil {
		return res, fmt.Errorf("ops: requeue dead letters: %w", err)
	}
	return res, nil
}

// forgetListing makes the next DeadLetters list the DLQ again.
func (s *Source) forgetListing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listed = nil
}

func (s *Source) channel(ctx context.Context) (*amqp.Channel, error) {
	ctx, cancel := context.WithTimeout(ctx, channelTimeout)
	defer cancel()
	ch, err := s.conn.Channel(ctx)
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	return ch, nil
}
