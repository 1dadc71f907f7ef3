package analytics

import (
	"errors"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 13, 20, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name, from, to, groupBy string
		want                    Query
		err                     bool
	}{
		{name: "defaults: 30 days up to today", want: Query{Grain: GrainDay, From: day(6).AddDate(0, 0, -30), To: day(6)}},
		{name: "hours by model", from: "2026-12-05T10:30:00Z", to: "2026-12-05T12:00:00+01:00", groupBy: "hour,model",
			want: Query{Grain: GrainHour, From: day(5).Add(10 * time.Hour), To: day(5).Add(11 * time.Hour), ByModel: true}},
		{name: "days by user and model", from: "2026-12-01", groupBy: "user,model,day",
			want: Query{Grain: GrainDay, From: day(1), To: day(6), ByUser: true, ByModel: true}},
		{name: "hours by user", groupBy: "hour,user", err: true},
		{name: "dates", from: "2026-12-01", to: "2026-12-03", groupBy: "day,kind,outcome", want: Query{Grain: GrainDay, From: day(1), To: day(3)}},
		{name: "default hours: 30 up to this one", groupBy: "hour", want: Query{Grain: GrainHour, From: now.Truncate(time.Hour).Add(-29 * time.Hour), To: now.Truncate(time.Hour).Add(time.Hour)}},
		{name: "unknown dimension", groupBy: "tone", err: true},
		{name: "two grains", groupBy: "hour,day", err: true},
		{name: "bad time", from: "yesterday", err: true},
		{name: "empty window", from: "2026-12-03", to: "2026-12-01", err: true},
		{name: "too many hours", from: "2026-10-01", to: "2026-12-01", groupBy: "hour", err: true},
		{name: "too many days", from: "2020-01-01", to: "2026-12-01", err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseQuery(c.from, c.to, c.groupBy, now)
			if c.err {
				if !errors.Is(err, ErrQuery) {
					t.Fatalf("got %+v, %v; want an ErrQuery", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestParsePrices(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		model string
		want  Price
		err   bool
	}{
		{in: "", model: "gpt-4o-mini", want: Price{150_000, 600_000}},
		{in: "gpt-4o-mini=1/2", model: "gpt-4o-mini", want: Price{1, 2}},
		{in: " mine = 10/20 ; *=5/6", model: "*", want: Price{5, 6}},
		{in: "a=1/2,b=3/4", model: "b", want: Price{3, 4}},
		{in: "nope", err: true},
		{in: "a=1", err: true},
		{in: "=1/2", err: true},
		{in: "a=-1/2", err: true},
		{in: "a=1.5/2", err: true},
	} {
		p, err := ParsePrices(c.in)
		if c.err != (err != nil) || !c.err && p[c.model] != c.want {
			t.Errorf("ParsePrices(%q) = %v, %v; want %s at %v", c.in, p, err, c.model, c.want)
		}
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	p := Prices{"m": {Input: 150_000, Output: 600_000}, AnyModel: {Input: 1_000_000, Output: 1_000_000}}
	for _, c := range []struct {
		model              string
		prompt, completion int64
		want               int64
	}{
		{"m", 1000, 300, 150 + 180},
		{"m", 1, 1, 1}, // 0.75 rounds to 1
		{"other", 10, 10, 20},
		{"", 0, 0, 0},
	} {
		if got := p.Cost(c.model, c.prompt, c.completion); got != c.want {
			t.Errorf("Cost(%s, %d, %d) = %d, want %d", c.model, c.prompt, c.completion, got, c.want)
		}
	}
	if got := (Prices{}).Cost("x", 1000, 1000); got != 0 {
		t.Errorf("no prices: %d", got)
	}
	if s := p.String(); s != "*=1000000/1000000;m=150000/600000" {
		t.Errorf("String() = %s", s)
	}
}
