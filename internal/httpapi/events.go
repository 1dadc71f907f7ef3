package httpapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/progress"
)

// Subscriber delivers a job's live progress.
type Subscriber interface {
	Subscribe(jobID string) (<-chan *progress.Event, func())
}

// Streams configures the job event streams.
type Streams struct {
	// Hub delivers progress events; nil streams status from the database only.
	Hub Subscriber
	// Done ends every open stream (the server is stopping).
	Done <-chan struct{}
	// Secret signs stream tokens (the JWT secret).
	Secret []byte
	// Heartbeat is the interval of keep-alive comments. Defaults to 15s.
	Heartbeat time.Duration
	// Poll is how often a stream rereads the job, in case a progress event was lost.
	// Defaults to 2s.
	Poll time.Duration
	// MaxPerUser caps one user's open streams on this replica; more are refused with 429.
	// Defaults to 10.
	MaxPerUser int
	// MaxLifetime ends a stream after this long; EventSource reconnects (Last-Event-ID) and
	// the new stream starts from the stored job. Defaults to 10m.
	MaxLifetime time.Duration
}

// streamCount counts each user's open streams.
type streamCount struct {
	mu   sync.Mutex
	open map[int64]int
	max  int
}

// acquire takes a stream for user, if the user has fewer than max open.
func (s *streamCount) acquire(user int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[user] >= s.max {
		return false
	}
	s.open[user]++
	return true
}

func (s *streamCount) release(user int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[user]--; s.open[user] <= 0 {
		delete(s.open, user)
	}
}

// streamTokenTTL is how long a stream token may wait for its one use: a client asks for one
// right before opening the stream (and for a new one to reopen it).
const streamTokenTTL = time.Minute

func handleStreamToken(store JobStore, secret []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Params("jobId")
		if !job.ValidID(id) {
			return newError(fiber.StatusBadRequest, "invalid_job_id", "jobId must be 1-64 characters of [A-Za-z0-9._:-]")
		}
		if _, err := store.Get(c.UserContext(), userID(c), id); errors.Is(err, jobstore.ErrNotFound) {
			return newError(fiber.StatusNotFound, "not_found", "no job %s", id)
		} else if err != nil {
			return unavailable(err)
		}
		now := time.Now()
		token, err := auth.IssueStream(secret, userID(c), id, streamTokenTTL, now)
		if err != nil {
			return err
		}
		return c.JSON(job.StreamToken{ExpiresAt: now.Add(streamTokenTTL).UTC(), Token: token})
	}
}

// handleEvents streams a job's progress as Server-Sent Events: status on every transition
// (first the current one), delta with each piece of the letter, then completed, failed or
// cancelled with the whole job, after which the stream ends. A client that comes back after
// the end (Last-Event-ID: final) gets 204, which tells EventSource to stop.
func handleEvents(store JobStore, st Streams) fiber.Handler {
	st.Heartbeat = cmpDuration(st.Heartbeat, 15*time.Second)
	st.Poll = cmpDuration(st.Poll, 2*time.Second)
	st.MaxLifetime = cmpDuration(st.MaxLifetime, 10*time.Minute)
	count := &streamCount{open: map[int64]int{}, max: cmp.Or(st.MaxPerUser, 10)}
	watcher := newJobWatcher(store, st.Poll)
	return func(c *fiber.Ctx) error {
		id, user := c.Params("jobId"), userID(c)
		if !job.ValidID(id) {
			return newError(fiber.StatusBadRequest, "invalid_job_id", "jobId must be 1-64 characters of [A-Za-z0-9._:-]")
		}
		if !count.acquire(user) {
			c.Set(fiber.HeaderRetryAfter, "5")
			return newError(fiber.StatusTooManyRequests, "too_many_streams", "at most %d open event streams per user", count.max)
		}
		// Subscribe and watch before reading the job, so no transition falls between.
		events, leave := subscribe(st.Hub, id)
		watched, unwatch := watcher.watch(id)
		unsubscribe := func() { leave(); unwatch(); count.release(user) }
		j, err := store.Get(c.UserContext(), user, id)
		if err != nil {
			unsubscribe()
			if errors.Is(err, jobstore.ErrNotFound) {
				return newError(fiber.StatusNotFound, "not_found", "no job %s", id)
			}
			return unavailable(err)
		}
		if j.Status.Final() && c.Get("Last-Event-ID") == finalEventID {
			unsubscribe()
			return c.SendStatus(fiber.StatusNoContent)
		}
		c.Set(fiber.HeaderContentType, "text/event-stream")
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set("X-Accel-Buffering", "no")
		s := &eventStream{st: st, conn: c.Context().Conn(), user: user, job: j, events: events, watched: watched,
			watcher: watcher, leave: unsubscribe}
		c.Context().SetBodyStream(s, -1) // chunked: fasthttp writes and flushes each Read as a chunk
		return nil
	}
}

const finalEventID = "final"

func subscribe(hub Subscriber, id string) (<-chan *progress.Event, func()) {
	if hub == nil {
		return nil, func() {}
	}
	return hub.Subscribe(id)
}

// eventStream is one client's stream, the body of its response: the server's connection
// goroutine reads it (Read waits for the next event) and sends each read as a chunk; it
// closes the stream when the stream ends or the client has gone. No goroutine or buffer of
// its own, so an idle stream costs little.
type eventStream struct {
	st      Streams
	conn    net.Conn
	user    int64
	job     jobstore.Job
	events  <-chan *progress.Event
	watched <-chan jobstore.Job // the job as the replica's watcher reread it
	watcher *jobWatcher
	leave   func()

	out       []byte // formatted events not yet read
	ended     bool   // nothing follows out
	beat      *time.Ticker
	life      *time.Timer
	closeOnce sync.Once
}

// Read returns the next events, waiting for them; io.EOF once the stream has ended. A client
// that does not take an event within 30 s is dropped.
func (s *eventStream) Read(p []byte) (int, error) {
	if len(s.out) == 0 && !s.ended {
		s.next()
	}
	if len(s.out) == 0 {
		return 0, io.EOF
	}
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// Close stops the stream's timers and subscriptions; the server calls it when the response
// ends, however it ends.
func (s *eventStream) Close() error {
	s.closeOnce.Do(func() {
		if s.beat != nil {
			s.beat.Stop()
			s.life.Stop()
		}
		s.leave()
	})
	return nil
}

// next adds the next events to out, waiting until there are some or the stream ends. The
// first call sends the retry interval and the job as it is now.
func (s *eventStream) next() {
	if s.beat == nil {
		s.beat, s.life = time.NewTicker(s.st.Heartbeat), time.NewTimer(s.st.MaxLifetime)
		s.add("", "retry: 3000\n\n") // reconnect after 3 s
		if s.job.Status.Final() {
			s.final(s.job)
		} else {
			s.status(s.job.Status, s.job.Attempts)
		}
		return
	}
	for len(s.out) == 0 && !s.ended {
		select {
		case <-s.st.Done:
			s.ended = true
		case <-s.life.C: // the client reconnects and picks up from the stored job
			s.ended = true
		case <-s.beat.C:
			s.add("", ": ping\n\n")
		case j := <-s.watched:
			s.update(j)
		case e := <-s.events:
			s.event(e)
		}
	}
}

func (s *eventStream) event(e *progress.Event) {
	switch {
	case e.JobID != s.job.ID: // not this stream's: never shown to this viewer
	case e.Type == progress.TypeDelta:
		data, _ := json.Marshal(map[string]any{"text": e.Text, "index": e.Index, "attempt": e.Attempt})
		s.add(fmt.Sprintf("%d-%d", e.Attempt, e.Index), fmt.Sprintf("event: delta\ndata: %s\n\n", data))
	case e.Status.Final(): // the database, not the event, says how it ended
		s.watcher.readSoon()
	case e.Status != s.job.Status || e.Attempt != s.job.Attempts:
		s.job.Status, s.job.Attempts = e.Status, max(e.Attempt, s.job.Attempts)
		s.status(e.Status, s.job.Attempts)
	}
}

// update takes the job as stored: the database, not the events, decides the end.
func (s *eventStream) update(j jobstore.Job) {
	switch {
	case j.UserID != s.user:
	case j.Status.Final():
		s.final(j)
	case j.Status != s.job.Status || j.Attempts != s.job.Attempts:
		s.job = j
		s.status(j.Status, j.Attempts)
	}
}

func (s *eventStream) status(st job.Status, attempts int) {
	data, _ := json.Marshal(map[string]any{"status": st, "attempts": attempts})
	s.add(fmt.Sprintf("%d-%s", attempts, st), fmt.Sprintf("event: status\ndata: %s\n\n", data))
}

// final sends the job as it ended; the stream ends after it.
func (s *eventStream) final(j jobstore.Job) {
	name := map[job.Status]string{job.StatusCompleted: "completed", job.StatusFailed: "failed", job.StatusCancelled: "cancelled"}[j.Status]
	data, _ := json.Marshal(viewOf(j))
	s.add(finalEventID, fmt.Sprintf("event: %s\ndata: %s\n\n", name, data))
	s.ended = true
}

// add queues one event, with its id if any.
func (s *eventStream) add(id, event string) {
	if id != "" {
		s.out = append(s.out, "id: "+id+"\n"...)
	}
	s.out = append(s.out, event...)
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
