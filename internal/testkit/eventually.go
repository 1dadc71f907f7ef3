package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// PollInterval is how often Eventually and WaitUntil ask again.
const PollInterval = 20 * time.Millisecond

// Eventually asks cond every PollInterval until it returns true, and fails t if it has not
// within the given time. msg says what was awaited: a format and its arguments, or one
// func() string called at the failure (to show the last value seen).
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg ...any) {
	t.Helper()
	if err := WaitUntil(context.Background(), within, PollInterval, cond); err != nil {
		t.Fatalf("not within %s: %s", within, message(msg))
	}
}

// WaitUntil asks cond every interval until it returns true (nil), ctx ends or within passes
// (an error). For code without a testing.TB: tools, and tests that handle the failure.
func WaitUntil(ctx context.Context, within, interval time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			if cond() {
				return nil
			}
			return fmt.Errorf("testkit: condition not met: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func message(msg []any) string {
	if len(msg) == 0 {
		return "the condition"
	}
	if f, ok := msg[0].(func() string); ok && len(msg) == 1 {
		return f()
	}
	if format, ok := msg[0].(string); ok {
		return fmt.Sprintf(format, msg[1:]...)
	}
	return fmt.Sprint(msg...)
}
