package llmroute

import (
	"testing"
	"time"
)

// step is one event in a breaker's life at a time since the start: a call admitted and its
// outcome recorded at once (call), a call admitted and left out (admit), or the outcome of the
// oldest call left out (end); with the route the breaker must pick and its state after.
type step struct {
	op        string // "call", "admit" or "end"
	at        time.Duration
	outcome   Outcome
	wantRoute string // "primary", "probe" or "fallback"; "" for end
	wantState State
}

func call(at time.Duration, o Outcome, route string, s State) step {
	return step{op: "call", at: at, outcome: o, wantRoute: route, wantState: s}
}

func admit(at time.Duration, route string, s State) step {
	return step{op: "admit", at: at, wantRoute: route, wantState: s}
}

func end(at time.Duration, o Outcome, s State) step {
	return step{op: "end", at: at, outcome: o, wantState: s}
}

// opened are the three failures that open a breaker of three, at 0.
var opened = []step{
	call(0, Failure, "primary", Closed), call(0, Failure, "primary", Closed), call(0, Failure, "primary", Open),
}

func TestBreakerStates(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"failures below the threshold keep it closed; a success resets the count", []step{
			call(0, Failure, "primary", Closed), call(1, Failure, "primary", Closed),
			call(2, Success, "primary", Closed),
			call(3, Failure, "primary", Closed), call(4, Failure, "primary", Closed),
		}},
		{"consecutive failures open it; while open calls go to the fallback", append(opened[:3:3],
			admit(1*s, "fallback", Open), admit(9*s, "fallback", Open),
		)},
		{"neutral outcomes neither count nor reset", []step{
			call(0, Failure, "primary", Closed), call(1, Neutral, "primary", Closed),
			call(2, Failure, "primary", Closed), call(3, Neutral, "primary", Closed),
			call(4, Failure, "primary", Open),
		}},
		{"after the cool-down one probe goes, the rest to the fallback; its success closes", append(opened[:3:3],
			admit(10*s, "probe", HalfOpen),
			admit(10*s, "fallback", HalfOpen),
			end(11*s, Success, Closed),
			call(11*s, Failure, "primary", Closed),
		)},
		{"a failed probe reopens with a doubled cool-down, capped at 8x; success resets it", append(opened[:3:3],
			call(10*s, Failure, "probe", Open), // open for 20 s
			admit(29*s, "fallback", Open),
			call(30*s, Failure, "probe", Open),  // 40 s
			call(70*s, Failure, "probe", Open),  // 80 s
			call(150*s, Failure, "probe", Open), // 160 s is more than 8 x 10 s: 80 s
			admit(229*s, "fallback", Open),
			call(230*s, Success, "probe", Closed),
			call(231*s, Failure, "primary", Closed), call(231*s, Failure, "primary", Closed),
			call(231*s, Failure, "primary", Open),
			admit(240*s, "fallback", Open),
			call(241*s, Success, "probe", Closed), // back to 10 s
		)},
		{"a neutral probe lets the next call probe", append(opened[:3:3],
			call(10*s, Neutral, "probe", HalfOpen),
			call(10*s, Success, "probe", Closed),
		)},
		{"a call sent before it opened changes nothing when it ends", append([]step{admit(0, "primary", Closed)},
			append(opened[:3:3],
				end(1*s, Success, Open),
				call(10*s, Failure, "probe", Open))...,
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBreaker(BreakerConfig{Failures: 3, Cooldown: 10 * time.Second})
			start := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
			var out []Ticket
			for i, st := range tt.steps {
				now := start.Add(st.at)
				switch st.op {
				case "call", "admit":
					ticket, _ := b.Admit(now)
					if got := route(ticket); got != st.wantRoute {
						t.Fatalf("step %d (%s at %s): routed to %s, want %s", i, st.op, st.at, got, st.wantRoute)
					}
					if st.op == "admit" {
						out = append(out, ticket)
						break
					}
					b.Record(now, ticket, st.outcome)
				case "end":
					b.Record(now, out[0], st.outcome)
					out = out[1:]
				}
				if b.State() != st.wantState {
					t.Fatalf("step %d (%s at %s): state %s, want %s", i, st.op, st.at, b.State(), st.wantState)
				}
			}
		})
	}
}

func route(t Ticket) string {
	switch {
	case t.Probe:
		return "probe"
	case t.Primary:
		return "primary"
	}
	return "fallback"
}

func TestBreakerTransitionsSayWhatChanged(t *testing.T) {
	t.Parallel()
	b := NewBreaker(BreakerConfig{Failures: 1, Cooldown: time.Second})
	now := time.Now()
	ticket, tr := b.Admit(now)
	if tr.Changed() {
		t.Fatalf("admit while closed: %+v", tr)
	}
	if tr := b.Record(now, ticket, Failure); tr != (Transition{Closed, Open}) {
		t.Fatalf("first failure of 1: %+v, want closed → open", tr)
	}
	ticket, tr = b.Admit(now.Add(time.Second))
	if tr != (Transition{Open, HalfOpen}) || !ticket.Probe {
		t.Fatalf("after the cool-down: %+v %+v, want open → half_open and a probe", tr, ticket)
	}
	if tr := b.Record(now.Add(time.Second), ticket, Success); tr != (Transition{HalfOpen, Closed}) {
		t.Fatalf("probe's success: %+v, want half_open → closed", tr)
	}
}
