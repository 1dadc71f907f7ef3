package outbox

import (
	"testing"
	"time"
)

func TestLingerFor(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	for _, c := range []struct {
		linger, sinceLast, want time.Duration
	}{
		{10 * ms, 3 * ms, 10 * ms},       // rows every few ms: gather them
		{10 * ms, 20 * ms, 10 * ms},      // at the edge: two lingers
		{10 * ms, 21 * ms, 0},            // seldom: look at once
		{10 * ms, time.Hour, 0},          // the first wake after a quiet hour
		{10 * ms, 1<<63 - 1, 0},          // never woken before
		{0, 0, 0},                        // no linger configured
		{20 * ms, 35 * ms, 20 * ms},      // the worker's
		{10 * ms, -time.Second, 10 * ms}, // a clock step back counts as recent
	} {
		if got := lingerFor(c.linger, c.sinceLast); got != c.want {
			t.Errorf("lingerFor(%v, %v) = %v, want %v", c.linger, c.sinceLast, got, c.want)
		}
	}
}
