package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/careerops/jobs/internal/llmbudget"
)

// BudgetStore is the shared rate budget the limiter keeps its turns in: llmbudget.Store,
// whose requests-per-minute budget keyed by name is the same for SMTP as for an LLM.
type BudgetStore interface {
	Reserve(ctx context.Context, name string, lim llmbudget.Limits, tokens int, maxWait time.Duration) (time.Duration, bool, error)
	Settle(ctx context.Context, name string, lim llmbudget.Limits, o llmbudget.Outcome) error
}

// DomainLimiter keeps the mails sent to each recipient domain within a rate per minute,
// shared by every worker replica: the budget "smtp:<domain>" of llm_budgets.
type DomainLimiter struct {
	store     BudgetStore
	perMinute int
	maxWait   time.Duration
}

// NewDomainLimiter returns a limiter of perMinute mails per domain (0: none) whose callers
// wait at most maxWait in line; a send whose turn is further off is deferred.
func NewDomainLimiter(store BudgetStore, perMinute int, maxWait time.Duration) *DomainLimiter {
	return &DomainLimiter{store: store, perMinute: perMinute, maxWait: maxWait}
}

// BudgetName is the budget of a recipient's domain: "smtp:" and the domain in lower case.
func BudgetName(recipient string) string {
	_, domain, _ := strings.Cut(recipient, "@")
	return "smtp:" + strings.ToLower(strings.TrimSuffix(domain, ">"))
}

// Wait takes a turn to send to recipient's domain. If the turn comes within maxWait, it
// waits for it and returns 0: send now. Otherwise it takes no turn and returns how long to
// defer the send (put the job back for then; its place in the line of deferred sends is
// kept). An error is the budget's table failing, or ctx ending.
func (l *DomainLimiter) Wait(ctx context.Context, recipient string) (deferFor time.Duration, err error) {
	if l == nil || l.perMinute <= 0 {
		return 0, nil
	}
	name, lim := BudgetName(recipient), llmbudget.Limits{RequestsPerMinute: l.perMinute}
	wait, ok, err := l.store.Reserve(ctx, name, lim, 0, l.maxWait)
	if err != nil {
		return 0, fmt.Errorf("email: rate limit: %w", err)
	}
	if !ok {
		return max(wait, time.Millisecond), nil
	}
	if wait <= 0 {
		return 0, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		// The turn goes unused: give it back, so the sends after it need not wait for it.
		settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.store.Settle(settle, name, lim, llmbudget.Outcome{Requests: -1}); err != nil {
			return 0, errors.Join(ctx.Err(), fmt.Errorf("email: rate limit: give back a turn: %w", err))
		}
		return 0, ctx.Err()
	case <-t.C:
		return 0, nil
	}
}
