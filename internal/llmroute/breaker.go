// Package llmroute sends the worker's LLM calls to a primary endpoint and, while a circuit
// breaker says the primary is failing, to a fallback endpoint (another provider, or a smaller
// model). The breaker is a pure state machine (breaker.go); Fallback (fallback.go) is the
// decorator that applies it, with its metrics and span attributes.
package llmroute

import (
	"cmp"
	"time"
)

// State is a circuit breaker's state.
type State int

const (
	// Closed: calls go to the primary; consecutive temporary failures are counted.
	Closed State = iota
	// HalfOpen: the cool-down is over; one call (the probe) goes to the primary, the others
	// to the fallback, until the probe's outcome closes or reopens the breaker.
	HalfOpen
	// Open: calls go to the fallback until the cool-down is over.
	Open
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return "unknown"
}

// Outcome is what a call to the primary says of its health.
type Outcome int

const (
	// Success: the primary wrote the letter.
	Success Outcome = iota
	// Failure: a temporary failure (429, 408, 409, 5xx, timeout, network error).
	Failure
	// Neutral: says nothing of the endpoint's health: a permanent error (a request the API
	// refused, a content filter, an answer cut at the token cap) or a call its caller gave up.
	Neutral
)

// Defaults of BreakerConfig, stated once.
const (
	DefaultFailures = 5
	DefaultCooldown = 30 * time.Second
	// maxCooldownFactor caps the growing cool-down at this many times Cooldown.
	maxCooldownFactor = 8
)

// BreakerConfig configures a Breaker.
type BreakerConfig struct {
	// Failures is how many consecutive temporary failures open the breaker. Defaults to
	// DefaultFailures.
	Failures int
	// Cooldown is how long the breaker stays open before a probe; each failed probe doubles
	// it, up to 8 × Cooldown, and a successful one resets it. Defaults to DefaultCooldown.
	Cooldown time.Duration
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	c.Failures = cmp.Or(max(c.Failures, 0), DefaultFailures)
	c.Cooldown = cmp.Or(max(c.Cooldown, 0), DefaultCooldown)
	return c
}

// Ticket is the breaker's answer for one call: where it goes.
type Ticket struct {
	// Primary: the call goes to the primary; otherwise to the fallback.
	Primary bool
	// Probe: the call is the half-open breaker's one probe; only its outcome moves an open
	// breaker.
	Probe bool
}

// Transition is a change of state; From == To when nothing changed.
type Transition struct{ From, To State }

// Changed reports whether the state changed.
func (t Transition) Changed() bool { return t.From != t.To }

// Breaker is the circuit breaker of one endpoint: a state machine driven by the caller's clock.
// It is not safe for concurrent use; Fallback guards it.
type Breaker struct {
	cfg      BreakerConfig
	state    State
	failures int           // consecutive temporary failures, while closed
	cooldown time.Duration // the current cool-down
	until    time.Time     // open: when the next probe may go
	probing  bool          // half-open: the probe is out
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker {
	cfg = cfg.withDefaults()
	return &Breaker{cfg: cfg, cooldown: cfg.Cooldown}
}

// State is the breaker's state as last moved by Admit or Record.
func (b *Breaker) State() State { return b.state }

// Admit decides where a call made at now goes: to the primary while closed; once the
// cool-down is over, one call goes to it as the probe; every other call to the fallback.
func (b *Breaker) Admit(now time.Time) (Ticket, Transition) {
	from := b.state
	switch {
	case b.state == Closed:
		return Ticket{Primary: true}, Transition{from, b.state}
	case b.state == Open && now.Before(b.until):
		return Ticket{}, Transition{from, b.state}
	case b.probing:
		return Ticket{}, Transition{from, b.state}
	}
	b.state, b.probing = HalfOpen, true
	return Ticket{Primary: true, Probe: true}, Transition{from, b.state}
}

// Record takes the outcome, at now, of a call Admit sent to the primary with ticket t. While
// closed, a success resets the count of failures and a failure adds to it, opening the
// breaker at BreakerConfig.Failures. The probe's success closes the breaker; its failure
// reopens it with a doubled cool-down; a neutral outcome lets the next call probe again.
// Other calls that end while the breaker is not closed (sent before it opened) change nothing.
func (b *Breaker) Record(now time.Time, t Ticket, o Outcome) Transition {
	from := b.state
	switch {
	case !t.Primary:
	case t.Probe && b.state == HalfOpen:
		b.probing = false
		switch o {
		case Success:
			b.state, b.failures, b.cooldown = Closed, 0, b.cfg.Cooldown
		case Failure:
			b.cooldown = min(2*b.cooldown, maxCooldownFactor*b.cfg.Cooldown)
			b.open(now)
		}
	case b.state != Closed:
	case o == Success:
		b.failures = 0
	case o == Failure:
		b.failures++
		if b.failures >= b.cfg.Failures {
			b.open(now)
		}
	}
	return Transition{from, b.state}
}

// open opens the breaker for the current cool-down.
func (b *Breaker) open(now time.Time) {
	b.state, b.failures, b.until = Open, 0, now.Add(b.cooldown)
}
