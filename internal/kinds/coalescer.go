package kinds

import (
	"strings"
	"time"
)

// coalescer gathers the LLM's pieces (often a token each) into one progress event per
// 100 ms or 512 bytes: a browser sees the letter grow as fast as a person reads, and the
// broker carries a tenth of the messages.
type coalescer struct {
	buf   strings.Builder
	last  time.Time
	index int
	emit  func(index int, text string)
}

func newCoalescer(emit func(index int, text string)) *coalescer {
	return &coalescer{last: time.Now(), emit: emit}
}

func (c *coalescer) add(text string) {
	c.buf.WriteString(text)
	if c.buf.Len() >= 512 || time.Since(c.last) >= 100*time.Millisecond {
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
