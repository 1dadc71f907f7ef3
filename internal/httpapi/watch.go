package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/careerops/jobs/internal/jobstore"
)

// jobWatcher rereads the jobs this replica's event streams follow, in case a progress event
// was lost: all of them in one query per poll, however many streams follow each, so that the
// database sees one read per replica and interval, not one per stream. It runs only while a
// stream follows a job.
type jobWatcher struct {
	store interface {
		GetMany(ctx context.Context, ids []string) ([]jobstore.Job, error)
	}
	poll time.Duration

	mu      sync.Mutex
	watches map[string]map[chan jobstore.Job]struct{}
	running bool
	soon    chan struct{} // a read before the next tick is wanted (or the last watch left)
}

func newJobWatcher(store JobStore, poll time.Duration) *jobWatcher {
	return &jobWatcher{store: store, poll: poll, watches: map[string]map[chan jobstore.Job]struct{}{}, soon: make(chan struct{}, 1)}
}

// watch follows job id: the channel gets the job as read at each poll (the latest only, if
// the reader falls behind) until stop is called.
func (w *jobWatcher) watch(id string) (jobs <-chan jobstore.Job, stop func()) {
	c := make(chan jobstore.Job, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watches[id] == nil {
		w.watches[id] = map[chan jobstore.Job]struct{}{}
	}
	w.watches[id][c] = struct{}{}
	if !w.running {
		w.running = true
		go w.run()
	}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if delete(w.watches[id], c); len(w.watches[id]) == 0 {
				delete(w.watches, id)
			}
			if len(w.watches) == 0 {
				w.readSoon() // the loop ends now, not at its next tick
			}
		})
	}
}

// readSoon asks for a read at once (a stream heard its job end); asks made during a read
// make one more.
func (w *jobWatcher) readSoon() {
	select {
	case w.soon <- struct{}{}:
	default:
	}
}

func (w *jobWatcher) run() {
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-w.soon:
		}
		ids := w.ids()
		if ids == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		jobs, err := w.store.GetMany(ctx, ids)
		cancel()
		if err == nil { // else: again at the next poll
			w.deliver(jobs)
		}
	}
}

// ids are the jobs followed; nil (and the loop stops) when there are none.
func (w *jobWatcher) ids() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.watches) == 0 {
		w.running = false
		return nil
	}
	ids := make([]string, 0, len(w.watches))
	for id := range w.watches {
		ids = append(ids, id)
	}
	return ids
}

// deliver hands each watch its job, replacing one it has not taken yet (only run sends).
func (w *jobWatcher) deliver(jobs []jobstore.Job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, j := range jobs {
		for c := range w.watches[j.ID] {
			select {
			case <-c:
			default:
			}
			c <- j
		}
	}
}
