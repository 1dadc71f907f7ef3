package llmbudget

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/testkit"
)

// testLLM is the endpoint behind a budget: it answers with answer (or err) and notes when
// each call came.
type testLLM struct {
	mu     sync.Mutex
	calls  []time.Time
	answer llm.Completion
	err    error
}

func (l *testLLM) Stream(context.Context, string, string, func(string)) (llm.Completion, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, time.Now())
	if l.err != nil {
		return llm.Completion{}, l.err
	}
	return l.answer, nil
}

func (l *testLLM) called() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// testBundle is what a Budgeted under test runs against.
type testBundle struct {
	store *Store
	llm   *testLLM
}

// setup returns a Budgeted on a fresh database, named after the test, with cfg.
func setup(t *testing.T, cfg Config) (*Budgeted, *testBundle) {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	b := &testBundle{store: NewStore(pool), llm: &testLLM{answer: llm.Completion{Text: "Dear", UsageSource: llm.UsageReported}}}
	cfg.Name = t.Name()
	return New(b.llm, b.store, cfg), b
}

// state reads the budget's row.
func (b *testBundle) state(t *testing.T, name string) State {
	t.Helper()
	var s State
	if err := b.store.pool.QueryRow(context.Background(),
		`SELECT requests_at, tokens_at, paused_until, line_at FROM llm_budgets WHERE name = $1`, name).
		Scan(&s.RequestsAt, &s.TokensAt, &s.PausedUntil, &s.LineAt); err != nil {
		t.Fatal(err)
	}
	return s
}

// fill empties the budget: as if the provider said its buckets are whole only a minute from now.
func (b *testBundle) fill(t *testing.T, name string, lim Limits) {
	t.Helper()
	full := Outcome{RateLimit: llm.RateLimit{Reported: true, ResetRequests: window, ResetTokens: window}}
	if err := b.store.Settle(context.Background(), name, lim, full); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentReserversNeverExceedTheLimit(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	store := NewStore(pool)
	lim := Limits{RequestsPerMinute: 6} // one request per 10 s: the test ends well before another is due
	const reservers = 40
	var (
		granted atomic.Int32
		wg      sync.WaitGroup
		start   = time.Now()
	)
	for range reservers {
		wg.Go(func() {
			_, ok, err := store.Reserve(context.Background(), "concurrent", lim, 0, 0)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	// The bucket holds 5 (6 less the headroom) and refills one every 10 s.
	most := 5 + int32(time.Since(start)/(10*time.Second)) + 1
	if got := granted.Load(); got < 5 || got > most {
		t.Errorf("%d of %d concurrent reservers got to go at once within %v, want 5 to %d", got, reservers, time.Since(start), most)
	}
}

func TestConcurrentWaitersTakeTurnsOneIntervalApart(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	store := NewStore(pool)
	lim := Limits{RequestsPerMinute: 6}
	var (
		mu    sync.Mutex
		waits []time.Duration
		wg    sync.WaitGroup
		start = time.Now()
	)
	for range 12 {
		wg.Go(func() {
			wait, ok, err := store.Reserve(context.Background(), "turns", lim, 0, 2*time.Minute)
			if err != nil || !ok {
				t.Errorf("reserve: %v, ok %v", err, ok)
			}
			mu.Lock()
			waits = append(waits, wait)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(waits)
	// Five go at once (the sixth would leave no headroom), then one every 10 s, less the
	// time the reservations took.
	for i, w := range waits {
		want := max(time.Duration(i+1)*10*time.Second-window+headroom, 0)
		if w > want || w < want-took {
			t.Errorf("waits = %v: the %dth is %v, want about %v", waits, i+1, w, want)
			break
		}
	}
}

func TestBudgeted(t *testing.T) {
	t.Parallel()
	t.Run("a call waits its turn", func(t *testing.T) {
		t.Parallel()
		lim := Limits{RequestsPerMinute: 600} // a turn every 100 ms
		budgeted, b := setup(t, Config{Limits: lim, MaxWait: 2 * time.Second})
		b.fill(t, t.Name(), lim)
		start := time.Now()
		for range 3 {
			if _, err := budgeted.Stream(context.Background(), "s", "u", nil); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took < headroom+150*time.Millisecond || took > headroom+2*time.Second {
			t.Errorf("three calls on an empty budget of one per 100 ms took %v, want about the headroom and 300ms", took)
		}
	})
	t.Run("a call that would wait past MaxWait is deferred, not made", func(t *testing.T) {
		t.Parallel()
		lim := Limits{RequestsPerMinute: 6}
		budgeted, b := setup(t, Config{Limits: lim, MaxWait: time.Second})
		b.fill(t, t.Name(), lim)
		before := b.state(t, t.Name())
		_, err := budgeted.Stream(context.Background(), "s", "u", nil)
		var e *llm.Error
		if !errors.Is(err, llm.ErrDeferred) || !errors.As(err, &e) || !e.Temporary || e.RetryAfter < 10*time.Second || e.RetryAfter > 10500*time.Millisecond {
			t.Fatalf("err = %#v, want a temporary llm.ErrDeferred with RetryAfter about 10.5s: half MaxWait before its turn", err)
		}
		if n := len(b.llm.called()); n != 0 {
			t.Errorf("the endpoint was called %d times", n)
		}
		// No turn taken; the next deferred call goes one interval (10 s) later in line.
		if after := b.state(t, t.Name()); !after.RequestsAt.Equal(before.RequestsAt) || after.LineAt.Sub(before.RequestsAt) != 10*time.Second-window+headroom+10*time.Second {
			t.Errorf("a deferred call changed the budget from %+v to %+v", before, after)
		}
	})
	t.Run("a 429 pauses the budget for every replica", func(t *testing.T) {
		t.Parallel()
		lim := Limits{RequestsPerMinute: 6000}
		first, b := setup(t, Config{Limits: lim, MaxWait: 5 * time.Second})
		b.llm.err = &llm.Error{StatusCode: 429, Temporary: true, RetryAfter: 400 * time.Millisecond, Err: errors.New("slow down")}
		if _, err := first.Stream(context.Background(), "s", "u", nil); err == nil {
			t.Fatal("want the 429")
		}
		b.llm.err = nil
		other := New(b.llm, b.store, Config{Name: t.Name(), Limits: lim, MaxWait: 5 * time.Second})
		if _, err := other.Stream(context.Background(), "s", "u", nil); err != nil {
			t.Fatal(err)
		}
		calls := b.llm.called()
		if gap := calls[1].Sub(calls[0]); gap < 380*time.Millisecond {
			t.Errorf("the next call came %v after a 429 that asked for 400ms", gap)
		}
	})
	t.Run("the real usage replaces the reservation", func(t *testing.T) {
		t.Parallel()
		lim := Limits{TokensPerMinute: 6000} // 10 ms a token
		budgeted, b := setup(t, Config{Limits: lim, Tokens: func(string, string) int { return 3000 }})
		b.llm.answer.PromptTokens, b.llm.answer.CompletionTokens = 100, 200
		start := time.Now()
		if _, err := budgeted.Stream(context.Background(), "s", "u", nil); err != nil {
			t.Fatal(err)
		}
		// 3000 tokens reserved on an idle budget (30 s of it), 300 used (3 s).
		if ahead := b.state(t, t.Name()).TokensAt.Sub(start); ahead < 2500*time.Millisecond || ahead > 3500*time.Millisecond {
			t.Errorf("the call's 300 tokens left the bucket whole %v from its start, want about 3s", ahead)
		}
	})
	t.Run("without its table the budget lets calls go, and says so", func(t *testing.T) {
		t.Parallel()
		metrics := NewMetrics(prometheus.NewRegistry())
		budgeted, b := setup(t, Config{Limits: Limits{RequestsPerMinute: 1}, Metrics: metrics})
		b.store.pool.Close()
		if _, err := budgeted.Stream(context.Background(), "s", "u", nil); err != nil {
			t.Fatal(err)
		}
		if n := len(b.llm.called()); n != 1 {
			t.Errorf("the endpoint was called %d times, want once", n)
		}
		var m dto.Metric
		if err := metrics.reservations.WithLabelValues(outcomeUnavailable).Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
			t.Errorf("reservations counted unavailable: %v (%v), want 1", m.GetCounter().GetValue(), err)
		}
	})
	t.Run("a call given up while waiting gives its turn back", func(t *testing.T) {
		t.Parallel()
		lim := Limits{RequestsPerMinute: 60}
		budgeted, b := setup(t, Config{Limits: lim, MaxWait: 5 * time.Second})
		b.fill(t, t.Name(), lim)
		before := b.state(t, t.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := budgeted.Stream(ctx, "s", "u", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's", err)
		}
		if after := b.state(t, t.Name()); !after.RequestsAt.Equal(before.RequestsAt) || len(b.llm.called()) != 0 {
			t.Errorf("requests_at went from %v to %v, %d calls made; want it back, none", before.RequestsAt, after.RequestsAt, len(b.llm.called()))
		}
	})
}
