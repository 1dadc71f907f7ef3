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

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/outbox"
	"github.com/careerops/jobs/internal/schedule"
)

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

	mu     sync.Mutex // held while listing the DLQ: one listing at a time
	listed *listing   // the last listing of the DLQ; nil: none
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

// QueueStats reports the queues of broker.Topology of every kind, in its order. A queue not declared yet is
// left out.
func (s *Source) QueueStats(ctx context.Context) ([]QueueStat, error) {
	ch, err := s.channel(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = ch.Close() }()
	var stats []QueueStat
	for _, q := range broker.Topology(job.Kinds()) {
		info, err := ch.QueueDeclarePassive(q.Name, true, false, false, false, nil)
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			// RabbitMQ closed the channel: carry on with another.
			_ = ch.Close()
			if ch, err = s.channel(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ops: inspect queue %s: %w", q.Name, err)
		}
		stats = append(stats, QueueStat{Name: q.Name, Messages: info.Messages, Consumers: info.Consumers})
	}
	return stats, nil
}

// JobsByStatus counts the jobs of every user by status (see jobstore.CountByStatus).
func (s *Source) JobsByStatus(ctx context.Context) (jobstore.StatusCounts, error) {
	return s.store.CountByStatus(ctx)
}

// JobsByKind counts the jobs of the kinds in the shared jobs table by kind and status (see
// jobstore.CountKinds).
func (s *Source) JobsByKind(ctx context.Context) (map[string]map[job.Status]int, error) {
	return s.store.CountKinds(ctx)
}

// Outbox reports the outbox's backlog, parked messages included.
func (s *Source) Outbox(ctx context.Context) (outbox.Backlog, error) {
	return outbox.ReadBacklog(ctx, s.store.Pool())
}

// Schedules reports the scheduled tasks: when each runs next, and how it last ran.
func (s *Source) Schedules(ctx context.Context) ([]schedule.Status, error) {
	return schedule.List(ctx, s.store.Pool(), kinds.StoreSpec)
}

// RecentFailures returns the last limit failed jobs of any user, the latest first.
func (s *Source) RecentFailures(ctx context.Context, limit int) ([]jobstore.Job, error) {
	return s.store.RecentFailures(ctx, limit)
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
	ch, err := s.channel(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = ch.Close() }() // returns the messages to the DLQ, before the unlock
	q, err := ch.QueueDeclarePassive(job.QueueDLQ, true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return nil, nil // not declared yet
	}
	if err != nil {
		return nil, fmt.Errorf("ops: inspect queue %s: %w", job.QueueDLQ, err)
	}
	if l := s.listed; l != nil && l.ready == q.Messages && l.limit == limit {
		return slices.Clone(l.entries), nil
	}
	var entries []dlq.Entry
	if q.Messages > 0 {
		if entries, _, err = dlq.List(ctx, ch, job.QueueGenerate, limit); err != nil {
			return nil, fmt.Errorf("ops: list dead letters: %w", err)
		}
	}
	s.listed = &listing{ready: q.Messages, limit: limit, entries: entries}
	return slices.Clone(entries), nil
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
