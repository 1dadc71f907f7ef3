// Package pause waits for a while unless a context ends first: the one home of the waits
// between retries and polls (the broker's reconnects, the outbox relay's linger, the LLM
// budget's turn, fakeopenai's latency).
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends: ctx.Err() if ctx ended first (or had already ended), nil
// once d has passed. A d of 0 or less does not wait.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
