package worker

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	tests := []struct {
		name        string
		attempt     int
		base, limit time.Duration
		rnd         func(int64) int64
		want        time.Duration
	}{
		{"first retry, lowest jitter is half the base", 1, time.Second, time.Minute, lowest, 500 * time.Millisecond},
		{"first retry, highest jitter is the base", 1, time.Second, time.Minute, highest, time.Second},
		{"third retry doubles twice", 3, time.Second, time.Minute, highest, 4 * time.Second},
		{"third retry lowest", 3, time.Second, time.Minute, lowest, 2 * time.Second},
		{"capped at the limit", 20, time.Second, 10 * time.Second, highest, 10 * time.Second},
		{"huge attempt does not overflow", 1000, time.Second, time.Hour, highest, time.Hour},
		{"attempt zero counts as first", 0, time.Second, time.Minute, highest, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Backoff(tt.attempt, tt.base, tt.limit, tt.rnd); got != tt.want {
				t.Errorf("Backoff = %v, want %v", got, tt.want)
			}
		})
	}
}

// The server's Retry-After is honoured up to the longest backoff (WORKER_RETRY_MAX_DELAY): a
// provider (or a proxy) asking for an hour does not park the job for an hour.
func TestRetryDelayHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for range 100 {
		if got := RetryDelay(1, 10*time.Millisecond, 5*time.Second, 3*time.Second); got != 3*time.Second {
			t.Fatalf("RetryDelay = %v, want the server's 3s", got)
		}
		if got := RetryDelay(1, 10*time.Millisecond, 5*time.Second, time.Hour); got != 5*time.Second {
			t.Fatalf("RetryDelay = %v, want the cap of 5s", got)
		}
		got := RetryDelay(2, 100*time.Millisecond, time.Second, 0)
		if got < 100*time.Millisecond || got > 200*time.Millisecond {
			t.Fatalf("RetryDelay(2) = %v, want within [100ms, 200ms]", got)
		}
	}
}

// The worker's deadline on an attempt comes after the kind's own timeout (so the LLM client's
// "no answer within …" is what a job records), and within the lease's margin.
func TestAttemptGrace(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ timeout, want time.Duration }{
		{100 * time.Millisecond, time.Second}, {2 * time.Second, time.Second}, {60 * time.Second, 6 * time.Second},
		{10 * time.Minute, leaseMargin / 3},
	} {
		if got := attemptGrace(tt.timeout); got != tt.want {
			t.Errorf("attemptGrace(%s) = %s, want %s", tt.timeout, got, tt.want)
		}
	}
}
