// Package progress carries a job's live progress — status changes and the pieces of its letter
// as the LLM writes them — from the worker to whichever api replica streams that job to a
// browser, over a RabbitMQ topic exchange of transient messages routed by job id. Nothing
// here is a source of truth: a lost event costs a browser a few words it gets again with the
// final letter, which the api reads from PostgreSQL.
package progress

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
)

// The kinds of events.
const (
	TypeStatus = "status" // the job changed status (Status, Attempt)
	TypeDelta  = "delta"  // a piece of the letter (Attempt, Index, Text)
)

// Event is one progress message.
type Event struct {
	Type    string     `json:"type"`
	JobID   string     `json:"jobId"`
	Status  job.Status `json:"status,omitempty"`
	Attempt int        `json:"attempt"`
	Index   int        `json:"index,omitempty"`
	Text    string     `json:"text,omitempty"`
}

// Announcer announces jobs' live progress; it may drop events. *Publisher is the real one.
type Announcer interface {
	Publish(Event)
	// Watched says whether jobID's letter is worth sending piece by piece now: false while
	// nobody is known to receive its events.
	Watched(jobID string) bool
}

// After RabbitMQ said that nobody receives a job's events, its pieces wait QuietFirst, then
// twice as long after each return, up to QuietAtMost: the longest a watcher who comes later
// waits for the letter so far. A browser that opens the stream just after its submit (and
// after the job's first event came back) sees the letter from QuietFirst on; a job nobody
// watches for 30 s sends about 20 events rather than 300.
const (
	QuietFirst  = 250 * time.Millisecond
	QuietAtMost = 2 * time.Second
)

// quietSpell is how long a job's pieces wait after its nth return (n ≥ 1).
func quietSpell(n int) time.Duration {
	if n > 4 {
		return QuietAtMost
	}
	return min(QuietFirst<<(n-1), QuietAtMost)
}

// quiet is an unwatched job's state: until when its pieces wait, and how many of its events
// came back.
type quiet struct {
	until   time.Time
	returns int
}

// Publisher sends events without waiting: a bounded buffer drained by one goroutine; when
// RabbitMQ is slow or away, events are dropped rather than slowing the job down.
//
// Events go out mandatory: RabbitMQ returns one that no queue is bound for, which means that
// no api replica streams its job and nobody else listens. The job is then unwatched for a
// while (Watched is false; see QuietFirst), and its letter's pieces wait, to go out together
// once it may be watched again; most jobs have nobody watching, and their pieces were most
// of the events.
type Publisher struct {
	conn   *broker.Connection
	log    *slog.Logger
	events chan Event

	mu        sync.Mutex
	unwatched map[string]quiet // by job id
}

// NewPublisher returns a Publisher; call Run to start sending.
func NewPublisher(conn *broker.Connection, log *slog.Logger) *Publisher {
	return &Publisher{conn: conn, log: log, events: make(chan Event, 4096), unwatched: map[string]quiet{}}
}

// Watched says whether jobID's pieces are worth sending: true unless RabbitMQ returned one
// of its events within the job's quiet spell. A nil Publisher sends nothing: false.
func (p *Publisher) Watched(jobID string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.unwatched[jobID]
	return !ok || time.Now().After(q.until)
}

// returned makes the jobs whose events come back unrouted unwatched for their next quiet
// spell, until returns closes (its channel closed).
func (p *Publisher) returned(returns <-chan amqp.Return) {
	for r := range returns {
		now := time.Now()
		p.mu.Lock()
		if len(p.unwatched) >= 4096 { // jobs that ended without a final event: forget the expired
			for id, q := range p.unwatched {
				if now.After(q.until) {
					delete(p.unwatched, id)
				}
			}
		}
		q := p.unwatched[r.RoutingKey]
		q.returns++
		q.until = now.Add(quietSpell(q.returns))
		p.unwatched[r.RoutingKey] = q
		p.mu.Unlock()
	}
}

// ended forgets a job whose final status is out.
func (p *Publisher) ended(jobID string) {
	p.mu.Lock()
	delete(p.unwatched, jobID)
	p.mu.Unlock()
}

// Publish queues e, or drops it if the buffer is full. A nil Publisher drops everything.
func (p *Publisher) Publish(e Event) {
	if p == nil {
		return
	}
	select {
	case p.events <- e:
	default:
	}
}

// Run sends queued events until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	for {
		var e Event
		select {
		case <-ctx.Done():
			return
		case e = <-p.events:
		}
		if ch == nil || ch.IsClosed() {
			openCtx, cancel := context.WithTimeout(ctx, time.Second)
			var err error
			ch, err = p.conn.Channel(openCtx)
			cancel()
			if err != nil {
				ch = nil
				continue // dropped
			}
			if err := broker.DeclareExchange(ch); err != nil {
				_ = ch.Close()
				ch = nil
				continue
			}
			go p.returned(ch.NotifyReturn(make(chan amqp.Return, 64)))
		}
		final := e.Type == TypeStatus && e.Status.Final() // the job's last word: nothing after it to spare
		if final {
			p.ended(e.JobID)
		}
		body, _ := json.Marshal(e)
		err := ch.PublishWithContext(ctx, job.ExchangeProgress, e.JobID, !final, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Transient,
			Expiration:   "60000", // a progress event older than a minute helps nobody
			Body:         body,
		})
		if err != nil {
			p.log.DebugContext(ctx, "progress: event dropped", slog.String("job_id", e.JobID), slog.String("error", err.Error()))
		}
	}
}

// Hub receives events for the jobs this api replica streams: one exclusive queue per replica,
// bound to the exchange for each job someone watches.
type Hub struct {
	conn *broker.Connection
	log  *slog.Logger

	mu   sync.Mutex
	ch   *amqp.Channel
	q    string
	subs map[string]map[chan *Event]struct{}
}

// NewHub returns a Hub; call Run to start receiving.
func NewHub(conn *broker.Connection, log *slog.Logger) *Hub {
	return &Hub{conn: conn, log: log, subs: map[string]map[chan *Event]struct{}{}}
}

// Subscribe returns the events of jobID until cancel is called. The channel is buffered;
// a subscriber too slow to keep up loses events rather than holding up the others. Every
// subscriber of a job receives the same *Event: read it, never change it. (Pointers keep an
// idle subscription small: 256 of them are 2 kB, 256 Events were 20 kB.)
func (h *Hub) Subscribe(jobID string) (events <-chan *Event, cancel func()) {
	c := make(chan *Event, 256)
	h.mu.Lock()
	first := len(h.subs[jobID]) == 0
	if first {
		h.subs[jobID] = map[chan *Event]struct{}{}
	}
	h.subs[jobID][c] = struct{}{}
	ch, q := h.ch, h.q
	h.mu.Unlock()
	if first && ch != nil {
		if err := ch.QueueBind(q, jobID, job.ExchangeProgress, false, nil); err != nil {
			h.log.Warn("progress: bind", slog.String("job_id", jobID), slog.String("error", err.Error()))
		}
	}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[jobID], c)
			last := len(h.subs[jobID]) == 0
			if last {
				delete(h.subs, jobID)
			}
			ch, q := h.ch, h.q
			h.mu.Unlock()
			if last && ch != nil {
				_ = ch.QueueUnbind(q, jobID, job.ExchangeProgress, nil)
			}
		})
	}
}

// Watching is how many jobs have subscribers now.
func (h *Hub) Watching() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Run receives until ctx ends, reopening its queue after a lost connection.
func (h *Hub) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.receive(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.WarnContext(ctx, "progress: hub reconnecting", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (h *Hub) receive(ctx context.Context) error {
	ch, err := h.conn.Channel(ctx)
	if err != nil {
		return err
	}
	defer func() {
		h.mu.Lock()
		h.ch = nil
		h.mu.Unlock()
		_ = ch.Close()
	}()
	if err := broker.DeclareExchange(ch); err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeClassic})
	if err != nil {
		return err
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return err
	}
	// Bind the jobs already watched, then publish the channel for new subscriptions.
	h.mu.Lock()
	for id := range h.subs {
		if err := ch.QueueBind(q.Name, id, job.ExchangeProgress, false, nil); err != nil {
			h.mu.Unlock()
			return err
		}
	}
	h.ch, h.q = ch, q.Name
	h.mu.Unlock()

	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			if err == nil {
				return amqp.ErrClosed
			}
			return err
		case d, ok := <-deliveries:
			if !ok {
				return amqp.ErrClosed
			}
			e := new(Event)
			if json.Unmarshal(d.Body, e) != nil || e.JobID == "" {
				continue
			}
			h.dispatch(e)
		}
	}
}

func (h *Hub) dispatch(e *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs[e.JobID] {
		select {
		case c <- e:
		default: // too slow: this subscriber misses an event
		}
	}
}
