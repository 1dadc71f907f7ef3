package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// group runs a program's long-running parts (servers, relay, consumers, listeners) and stops
// them in stages, in the order the program chooses. A part that ends on its own, with an
// error or before its stage was stopped, stops every stage of the group; its error reaches
// the program through its stage's wait.
type group struct {
	failed context.Context // done once a part has failed
	fail   context.CancelCauseFunc
}

func newGroup() *group {
	failed, fail := context.WithCancelCause(context.Background())
	return &group{failed: failed, fail: fail}
}

// stage is parts started and stopped together.
type stage struct {
	g      *group
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// stage returns a new stage whose parts run until parent ends, stop is called or a part of
// the group fails.
func (g *group) stage(parent context.Context) *stage {
	ctx, cancel := context.WithCancel(parent)
	unhook := context.AfterFunc(g.failed, cancel)
	return &stage{g: g, ctx: ctx, cancel: func() { unhook(); cancel() }}
}

// run runs part in the background with the stage's context.
func (s *stage) run(name string, part func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := part(s.ctx)
		stopped := s.ctx.Err() != nil
		switch {
		case stopped && (err == nil || errors.Is(err, context.Canceled)):
			return // the end asked for
		case err != nil:
			err = fmt.Errorf("%s: %w", name, err)
		default:
			err = fmt.Errorf("%s: stopped by itself", name)
		}
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		s.g.fail(err)
	}()
}

// wait waits until the stage's parts have ended (their parent ended, or a part of the group
// failed) and returns their errors.
func (s *stage) wait() error {
	s.wg.Wait()
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// stop stops the stage's parts, waits for them and returns their errors.
func (s *stage) stop() error {
	s.cancel()
	return s.wait()
}

// server is what serve runs: an *http.Server, or the api's Fiber app (fiberServer).
type server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// serve is a part that serves srv on ln until its context ends, then shuts srv down
// gracefully, waiting up to timeout for requests in flight (and closing the connections
// still open then).
func serve(srv server, ln net.Listener, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		err := srv.Shutdown(shutdownCtx)
		if closer, ok := srv.(interface{ Close() error }); ok && err != nil {
			err = errors.Join(fmt.Errorf("shutdown: %w", err), closer.Close())
		}
		if serveErr := <-served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		return err
	}
}
