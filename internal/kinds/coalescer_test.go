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
	c := newCoalescer(func(i int, text string) { indexes = append(indexes, i); got = append(got, text) }, func() bool { return true })
	for range 100 {
		c.add("abcd") // 400 bytes in quick succession: one event
	}
	c.add(strings.Repeat("x", 200)) // past 512 bytes: flushed
	c.add("tail")
	time.Sleep(110 * time.Millisecond)
	c.add("late") // 100 ms passed: flushed with what was waiting
	c.add("end")
	c.end()
	c.end() // nothing left: no empty event
	if len(got) != 3 || indexes[0] != 0 || indexes[2] != 2 {
		t.Fatalf("events %d (%v), want 3 indexed 0..2", len(got), indexes)
	}
	if all := strings.Join(got, ""); all != strings.Repeat("abcd", 100)+strings.Repeat("x", 200)+"taillateend" {
		t.Fatalf("pieces lost or reordered: %d bytes", len(all))
	}
}

func TestSendNow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		buffered int
		waited   time.Duration
		watched  bool
		want     bool
	}{
		{10, time.Millisecond, true, false},        // too little, too soon
		{512, time.Millisecond, true, true},        // enough
		{10, 100 * time.Millisecond, true, true},   // waited long enough
		{512, time.Millisecond, false, false},      // enough, but nobody watches
		{10, 5 * time.Second, false, false},        // however long it waited
		{1 << 20, time.Hour, false, false},         // however much there is
		{0, 100 * time.Millisecond, true, true},    // flush says there is nothing
		{511, 99 * time.Millisecond, true, false},  // just under both
		{511, 99 * time.Millisecond, false, false}, // and unwatched
	} {
		if got := sendNow(tc.buffered, tc.waited, func() bool { return tc.watched }); got != tc.want {
			t.Errorf("sendNow(%d, %s, watched %v) = %v, want %v", tc.buffered, tc.waited, tc.watched, got, tc.want)
		}
	}
}

func TestCoalescerHoldsThePiecesWhileNobodyWatches(t *testing.T) {
	t.Parallel()
	var got []string
	var indexes []int
	watched := false
	c := newCoalescer(func(i int, text string) { indexes = append(indexes, i); got = append(got, text) }, func() bool { return watched })
	for range 300 {
		c.add("abcd") // 1,200 bytes, nobody watching: nothing sent
	}
	if len(got) != 0 {
		t.Fatalf("sent %d events while nobody watched", len(got))
	}
	watched = true
	c.add("!") // a watcher came: the letter so far, as piece 0
	if len(got) != 1 || indexes[0] != 0 || got[0] != strings.Repeat("abcd", 300)+"!" {
		t.Fatalf("events %v (%d bytes), want the whole letter so far as piece 0", indexes, len(strings.Join(got, "")))
	}
	c.add(strings.Repeat("y", 600))
	watched = false
	c.add("unseen")
	c.end() // nobody watches at the end: the final event tells
	if len(got) != 2 || indexes[1] != 1 || got[1] != strings.Repeat("y", 600) {
		t.Fatalf("events %v, want pieces 0 and 1 only", indexes)
	}
}
