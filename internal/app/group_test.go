package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// untilDone is a part that runs until its context ends, recording its stop in order.
func untilDone(name string, order *[]string, mu *sync.Mutex) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		mu.Lock()
		defer mu.Unlock()
		*order = append(*order, name)
		return ctx.Err() // a context error after the stop is no failure
	}
}

func TestGroupStopsStagesInOrder(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		order []string
	)
	ctx, cancel := context.WithCancel(t.Context())
	g := newGroup()
	last := g.stage(context.WithoutCancel(ctx))
	last.run("admin", untilDone("admin", &order, &mu))
	back := g.stage(context.WithoutCancel(ctx))
	back.run("relay", untilDone("relay", &order, &mu))
	front := g.stage(ctx)
	front.run("worker", untilDone("worker", &order, &mu))

	cancel() // SIGTERM
	err := errors.Join(front.wait(), back.stop(), last.stop())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "worker relay admin" {
		t.Fatalf("stopped in the order %q", got)
	}
}

func TestGroupFailureStopsEveryStageAndReachesTheProgram(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		part    func(context.Context) error
		wantErr string
	}{
		{"error", func(context.Context) error { return errors.New("boom") }, "relay: boom"},
		{"return before the stop", func(context.Context) error { return nil }, "relay: stopped by itself"},
		{"error after the stop", func(ctx context.Context) error { <-ctx.Done(); return errors.New("late") }, "relay: late"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGroup()
			back := g.stage(context.Background())
			back.run("relay", tt.part)
			front := g.stage(context.Background()) // no signal: only a failure can stop it
			front.run("worker", func(ctx context.Context) error { <-ctx.Done(); return nil })
			done := make(chan error, 1)
			go func() { done <- errors.Join(front.wait(), back.stop()) }()
			if tt.name == "error after the stop" {
				time.Sleep(10 * time.Millisecond)
				if err := back.stop(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("stop = %v, want %q", err, tt.wantErr)
				}
			}
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("group ended with %v, want %q", err, tt.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a failed part did not stop the others")
			}
		})
	}
}
