package email

import (
	"context"
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
	// 60 a minute: one a second once the first burst (a minute's worth less a second) is spent.
	a := NewDomainLimiter(store, 60, 1500*time.Millisecond)
	b := NewDomainLimiter(store, 60, 1500*time.Millisecond)
	ctx := context.Background()
	for i := range 59 {
		l := map[bool]*DomainLimiter{true: a, false: b}[i%2 == 0]
		if d, err := l.Wait(ctx, "user@example.org"); err != nil || d != 0 {
			t.Fatalf("send %d: defer %s, %v; want at once", i, d, err)
		}
	}
	// The 60th's turn is a second away: past a wait of half a second, deferred.
	if d, err := NewDomainLimiter(store, 60, 500*time.Millisecond).Wait(ctx, "x@example.org"); err != nil || d <= 0 {
		t.Errorf("the 60th send, waiting 500ms at most: defer %s, %v; want deferred", d, err)
	}
	start := time.Now()
	if d, err := a.Wait(ctx, "other@EXAMPLE.org"); err != nil || d != 0 {
		t.Fatalf("the 60th send: defer %s, %v", d, err)
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Errorf("the 60th send to the domain waited %s, want about a second", waited)
	}
	if d, err := b.Wait(ctx, "x@elsewhere.example"); err != nil || d != 0 {
		t.Errorf("another domain: defer %s, %v; want at once", d, err)
	}
	if d, err := NewDomainLimiter(store, 0, time.Second).Wait(ctx, "x@example.org"); err != nil || d != 0 {
		t.Errorf("no limit: defer %s, %v", d, err)
	}
}
