package progress

import (
	"testing"
	"time"
)

func TestQuietSpellsDoubleUpToTheMost(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{
		1:   250 * time.Millisecond,
		2:   500 * time.Millisecond,
		3:   time.Second,
		4:   2 * time.Second,
		5:   2 * time.Second,
		64:  2 * time.Second, // no overflow however many came back
		999: 2 * time.Second,
	} {
		if got := quietSpell(n); got != want {
			t.Errorf("quietSpell(%d) = %s, want %s", n, got, want)
		}
	}
}
