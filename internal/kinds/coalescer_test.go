package kinds

import (
	"strings"
	"testing"
	"time"
)

func TestCoalescerGathersPiecesAndKeepsEveryByte(t *testing.T) {
	t.Parallel()
	var got []string
	var indexes []int
	c := newCoalescer(func(i int, text string) { indexes = append(indexes, i); got = append(got, text) })
	for range 100 {
		c.add("abcd") // 400 bytes in quick succession: one event
	}
	c.add(strings.Repeat("x", 200)) // past 512 bytes: flushed
	c.add("tail")
	time.Sleep(110 * time.Millisecond)
	c.add("late") // 100 ms passed: flushed with what was waiting
	c.add("end")
	c.flush()
	c.flush() // nothing left: no empty event
	if len(got) != 3 || indexes[0] != 0 || indexes[2] != 2 {
		t.Fatalf("events %d (%v), want 3 indexed 0..2", len(got), indexes)
	}
	if all := strings.Join(got, ""); all != strings.Repeat("abcd", 100)+strings.Repeat("x", 200)+"taillateend" {
		t.Fatalf("pieces lost or reordered: %d bytes", len(all))
	}
}
