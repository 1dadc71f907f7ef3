package kinds

import (
	"strings"
	"time"
)

// coalescer gathers the LLM's pieces (often a token each) into one progress event per
// 100 ms or 512 bytes: a browser sees the letter grow as fast as a person reads, and the
// broker carries a tenth of the messages. While nobody watches the job (watched says so),
// the pieces wait and go out together once someone does: a watcher who comes late gets the
// letter so far in one event, and a job nobody watches sends none.
type coalescer struct {
	buf     strings.Builder
	last    time.Time
	index   int
	emit    func(index int, text string)
	watched func() bool
}

func newCoalescer(emit func(index int, text string), watched func() bool) *coalescer {
	return &coalescer{last: time.Now(), emit: emit, watched: watched}
}

// sendNow is the coalescer's policy: send what is buffered once there is enough of it or it
// waited long enough, if anyone watches.
func sendNow(buffered int, waited time.Duration, watched func() bool) bool {
	return (buffered >= 512 || waited >= 100*time.Millisecond) && watched()
}

func (c *coalescer) add(text string) {
	c.buf.WriteString(text)
	if sendNow(c.buf.Len(), time.Since(c.last), c.watched) {
		c.flush()
	}
}

// end sends what is left if anyone watches; otherwise the final event, with the whole
// letter, tells whoever comes.
func (c *coalescer) end() {
	if c.watched() {
		c.flush()
	}
}

func (c *coalescer) flush() {
	if c.buf.Len() == 0 {
		return
	}
	c.emit(c.index, c.buf.String())
	c.index++
	c.buf.Reset()
	c.last = time.Now()
}
