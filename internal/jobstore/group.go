package jobstore

import (
	"context"
	"fmt"
	"sync"
)

// group commits together the calls that arrive while its transactions are busy: a call waits
// for a free slot; the batch that takes the slot holds every call waiting then (up to max),
// and commit runs them in one transaction. Under no load a call is its own batch at once;
// under load the batch shares its round trips and its commit's flush. Each call still gets
// its own answer, and each batch is bounded by batchTimeout. It backs the Batcher (creates)
// and Batched (claims, completes).
type group[T, R any] struct {
	max     int
	commit  func(ctx context.Context, items []T) []answer[R] // an answer per item, in order
	in      chan *call[T, R]
	slots   chan struct{}
	stopped chan struct{}
	flights sync.WaitGroup
}

type call[T, R any] struct {
	item T
	done chan answer[R] // buffered: the batch never waits for its caller
}

type answer[R any] struct {
	v   R
	err error
}

func newGroup[T, R any](maxBatch, inFlight int, commit func(context.Context, []T) []answer[R]) *group[T, R] {
	return &group[T, R]{max: max(maxBatch, 1), commit: commit, in: make(chan *call[T, R]),
		slots: make(chan struct{}, max(inFlight, 1)), stopped: make(chan struct{})}
}

// do commits item with the calls around it; before run starts it waits, after run returns
// item commits alone.
func (g *group[T, R]) do(ctx context.Context, item T) (R, error) {
	c := &call[T, R]{item: item, done: make(chan answer[R], 1)}
	select {
	case g.in <- c:
	case <-g.stopped:
		a := g.commit(ctx, []T{item})[0]
		return a.v, a.err
	case <-ctx.Done():
		var zero R
		return zero, fmt.Errorf("jobstore: %w", ctx.Err())
	}
	a := <-c.done // the batch has it: its commit decides
	return a.v, a.err
}

// run gathers and commits batches until ctx ends, then waits for the batches in flight.
func (g *group[T, R]) run(ctx context.Context) {
	defer g.flights.Wait()
	defer close(g.stopped)
	for {
		select { // a slot first: while none is free, calls gather
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var batch []*call[T, R]
		select {
		case c := <-g.in:
			batch = append(batch, c)
		case <-ctx.Done():
			return
		}
	gather:
		for len(batch) < g.max {
			select {
			case c := <-g.in:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		g.flights.Go(func() {
			defer func() { <-g.slots }()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
			defer cancel()
			items := make([]T, len(batch))
			for i, c := range batch {
				items[i] = c.item
			}
			for i, a := range g.commit(ctx, items) {
				batch[i].done <- a
			}
		})
	}
}
