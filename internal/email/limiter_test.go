package email

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/llmbudget"
	"github.com/careerops/jobs/internal/testkit"
)

func TestBudgetName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ada@Example.ORG": "smtp:example.org", "<b@x.example>": "smtp:x.example", "nobody": "smtp:",
	} {
		if got := BudgetName(in); got != want {
			t.Errorf("BudgetName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDomainLimiterSharesOneRatePerDomain: two limiters (two replicas) on one database share
// a domain's rate; another domain has its own; past the wait allowed, a send is deferred.
func TestDomainLimiterSharesOneRatePerDomain(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	store := llmbudget.NewStore(pool)
	// 6 a minute: one every 10 s, after a first burst of 5 (a minute's worth less a second).
	a := NewDomainLimiter(store, 6, 1500*time.Millisecond)
	b := NewDomainLimiter(store, 6, 1500*time.Millisecond)
	ctx := context.Background()
	start := time.Now()
	for i := range 5 {
		l := map[bool]*DomainLimiter{true: a, false: b}[i%2 == 0]
		if d, err := l.Wait(ctx, "user@example.org"); err != nil || d != 0 {
			t.Fatalf("send %d: defer %s, %v; want at once", i, d, err)
		}
	}
	// The 6th's turn is at most a second away: it waits for it.
	if d, err := a.Wait(ctx, "other@EXAMPLE.org"); err != nil || d != 0 {
		t.Fatalf("the 6th send: defer %s, %v", d, err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("six sends took %s, want about a second", waited)
	}
	// The 7th's is 10 s later: past the wait allowed, deferred until about then.
	if d, err := b.Wait(ctx, "x@example.org"); err != nil || d < 5*time.Second || d > 11*time.Second {
		t.Errorf("the 7th send: defer %s, %v; want deferred by about 10 s", d, err)
	}
	if d, err := b.Wait(ctx, "x@elsewhere.example"); err != nil || d != 0 {
		t.Errorf("another domain: defer %s, %v; want at once", d, err)
	}
	if d, err := NewDomainLimiter(store, 0, time.Second).Wait(ctx, "x@example.org"); err != nil || d != 0 {
		t.Errorf("no limit: defer %s, %v", d, err)
	}
}

// TestDomainLimiterGivesBackAnUnusedTurn: a send whose context ends while it waits for its
// turn gives the turn back: the next send takes it.
func TestDomainLimiterGivesBackAnUnusedTurn(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	l := NewDomainLimiter(llmbudget.NewStore(pool), 6, 15*time.Second)
	ctx := context.Background()
	for range 5 { // the first burst
		if d, err := l.Wait(ctx, "a@example.org"); err != nil || d != 0 {
			t.Fatalf("defer %s, %v", d, err)
		}
	}
	// The 6th's turn is about a second away (the 7th's 11 s): it gives up waiting for it.
	impatient, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(impatient, "a@example.org"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a wait cut short: %v", err)
	}
	start := time.Now()
	if d, err := l.Wait(ctx, "a@example.org"); err != nil || d != 0 {
		t.Fatalf("the next send: defer %s, %v", d, err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("the next send waited %s: the cancelled send's turn was not given back", waited)
	}
}
