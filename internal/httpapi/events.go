package httpapi

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
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
	Subscribe(jobID string) (<-chan progress.Event, func())
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
		s := &eventStream{st: st, conn: c.Context().Conn(), user: user, job: j, events: events, watched: watched, watcher: watcher}
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			defer unsubscribe()
			s.w = w
			s.run()
		})
		return nil
	}
}

const finalEventID = "final"

func subscribe(hub Subscriber, id string) (<-chan progress.Event, func()) {
	if hub == nil {
		return nil, func() {}
	}
	return hub.Subscribe(id)
}

// eventStream is one client's stream; it lives in the server's writer goroutine.
type eventStream struct {
	st      Streams
	conn    net.Conn
	w       *bufio.Writer
	user    int64
	job     jobstore.Job
	events  <-chan progress.Event
	watched <-chan jobstore.Job // the job as the replica's watcher reread it
	watcher *jobWatcher
}

func (s *eventStream) run() {
	if err := s.write("", "retry: 3000\n\n"); err != nil { // reconnect after 3 s
		return
	}
	if s.job.Status.Final() {
		_ = s.final(s.job)
		return
	}
	if s.status(s.job.Status, s.job.Attempts) != nil {
		return
	}
	beat := time.NewTicker(s.st.Heartbeat)
	defer beat.Stop()
	life := time.NewTimer(s.st.MaxLifetime)
	defer life.Stop()
	for {
		var err error
		select {
		case <-s.st.Done:
			return
		case <-life.C: // the client reconnects and picks up from the stored job
			return
		case <-beat.C:
			err = s.write("", ": ping\n\n")
		case j := <-s.watched:
			err = s.update(j)
		case e := <-s.events:
			switch {
			case e.JobID != s.job.ID: // not this stream's: never shown to this viewer
			case e.Type == progress.TypeDelta:
				data, _ := json.Marshal(map[string]any{"text": e.Text, "index": e.Index, "attempt": e.Attempt})
				err = s.write(fmt.Sprintf("%d-%d", e.Attempt, e.Index), fmt.Sprintf("event: delta\ndata: %s\n\n", data))
			case e.Status.Final(): // the database, not the event, says how it ended
				s.watcher.readSoon()
			case e.Status != s.job.Status || e.Attempt != s.job.Attempts:
				s.job.Status, s.job.Attempts = e.Status, max(e.Attempt, s.job.Attempts)
				err = s.status(e.Status, s.job.Attempts)
			}
		}
		if err != nil { // the client left, or the job ended
			return
		}
	}
}

var errStreamDone = errors.New("stream done")

// update takes the job as stored: the database, not the events, decides the end.
func (s *eventStream) update(j jobstore.Job) error {
	if j.UserID != s.user {
		return nil
	}
	if j.Status.Final() {
		if err := s.final(j); err != nil {
			return err
		}
		return errStreamDone
	}
	if j.Status != s.job.Status || j.Attempts != s.job.Attempts {
		s.job = j
		return s.status(j.Status, j.Attempts)
	}
	return nil
}

func (s *eventStream) status(st job.Status, attempts int) error {
	data, _ := json.Marshal(map[string]any{"status": st, "attempts": attempts})
	return s.write(fmt.Sprintf("%d-%s", attempts, st), fmt.Sprintf("event: status\ndata: %s\n\n", data))
}

func (s *eventStream) final(j jobstore.Job) error {
	name := map[job.Status]string{job.StatusCompleted: "completed", job.StatusFailed: "failed", job.StatusCancelled: "cancelled"}[j.Status]
	data, _ := json.Marshal(viewOf(j))
	return s.write(finalEventID, fmt.Sprintf("event: %s\ndata: %s\n\n", name, data))
}

// write sends one event (with its id, if any) and flushes it; a client that does not read
// within 30 s is dropped.
func (s *eventStream) write(id, event string) error {
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	}
	if id != "" {
		if _, err := s.w.WriteString("id: " + id + "\n"); err != nil {
			return err
		}
	}
	if _, err := s.w.WriteString(event); err != nil {
		return err
	}
	return s.w.Flush()
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
