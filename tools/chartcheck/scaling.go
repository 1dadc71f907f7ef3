package chartcheck

import (
	"fmt"
	"time"
)

// ReplicaChange is one change of a workload's replica count, at an offset from a reference
// time (the start of the phase being checked).
type ReplicaChange struct {
	At   time.Duration
	From int
	To   int
}

// String is "+45s 3→2".
func (c ReplicaChange) String() string {
	return fmt.Sprintf("+%s %d→%d", c.At.Round(time.Second), c.From, c.To)
}

// ScaleInRule is the pace docs/deploy.md promises for the HPA's scale-in while the queue still
// holds work (the trigger is active, so KEDA leaves the count to the HPA): nothing is removed
// before Stabilization has passed since the depth fell, then at most PodsPerPeriod pods per
// Period. Tolerance absorbs the HPA's sync period and KEDA's polling on the early side.
type ScaleInRule struct {
	Stabilization time.Duration
	PodsPerPeriod int
	Period        time.Duration
	Tolerance     time.Duration
}

// ScaleInViolations lists how changes (all measured from the moment the depth fell, and all of
// them decreases) break rule. A scale-up in a scale-in phase is a violation too.
func ScaleInViolations(rule ScaleInRule, changes []ReplicaChange) []string {
	var out []string
	for i, c := range changes {
		switch {
		case c.To >= c.From:
			out = append(out, fmt.Sprintf("%s: not a scale-in", c))
		case c.At+rule.Tolerance < rule.Stabilization:
			out = append(out, fmt.Sprintf("%s: before the %s stabilization window", c, rule.Stabilization))
		}
		// The pods removed within one Period ending at this change (this change included).
		removed := 0
		for _, p := range changes[:i+1] {
			if p.To < p.From && c.At-p.At+rule.Tolerance < rule.Period {
				removed += p.From - p.To
			}
		}
		if removed > rule.PodsPerPeriod {
			out = append(out, fmt.Sprintf("%s: %d pods removed within %s (at most %d)", c, removed, rule.Period, rule.PodsPerPeriod))
		}
	}
	return out
}
