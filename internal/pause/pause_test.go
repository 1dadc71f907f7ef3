package pause_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/pause"
)

func TestForWaitsUnlessTheContextEnds(t *testing.T) {
	t.Parallel()
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		d       time.Duration
		want    error
		atLeast time.Duration
	}{
		{"no wait", live, 0, nil, 0},
		{"a negative wait", live, -time.Second, nil, 0},
		{"a short wait", live, 20 * time.Millisecond, nil, 20 * time.Millisecond},
		{"an ended context, no wait", ended, 0, context.Canceled, 0},
		{"an ended context, a long wait", ended, time.Hour, context.Canceled, 0},
	} {
		start := time.Now()
		err := pause.For(tc.ctx, tc.d)
		took := time.Since(start)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || took < tc.atLeast || took > tc.atLeast+time.Second {
			t.Errorf("%s: For = %v after %s, want %v after at least %s", tc.name, err, took, tc.want, tc.atLeast)
		}
	}
}

func TestForStopsWhenTheContextEndsMidway(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := pause.For(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("For = %v after %s, want the deadline within moments", err, time.Since(start))
	}
}
