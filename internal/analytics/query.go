package analytics

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The grains of the rollups.
const (
	GrainHour = "hour"
	GrainDay  = "day"
)

// Longest windows a query may cover, by grain: a month of hours, two years of days.
const (
	MaxHourWindow = 31 * 24 * time.Hour
	MaxDayWindow  = 732 * 24 * time.Hour
)

// Query selects rollup rows: the buckets of Grain from From (inclusive) to To (exclusive),
// split by user and model or not (always by kind and outcome).
type Query struct {
	Grain           string
	From, To        time.Time
	ByUser, ByModel bool
	// UserID, if not 0, keeps that user's rows only (ByUser then holds).
	UserID int64
}

// ErrQuery is wrapped by every error of ParseQuery: the caller's input is wrong.
var ErrQuery = errors.New("bad usage query")

// ParseQuery reads a usage query from its parameters: from and to (RFC 3339 or YYYY-MM-DD,
// UTC; default: the 30 buckets up to now) and groupBy (a comma list of hour or day, user,
// model, kind, outcome; default day; rows are always by kind and outcome; by user only by
// day). The window is rounded out to whole buckets.
func ParseQuery(from, to, groupBy string, now time.Time) (Query, error) {
	q := Query{Grain: GrainDay}
	grains := 0
	for _, g := range strings.Split(groupBy, ",") {
		switch strings.TrimSpace(g) {
		case "", "kind", "outcome":
		case GrainHour, GrainDay:
			q.Grain = strings.TrimSpace(g)
			grains++
		case "user":
			q.ByUser = true
		case "model":
			q.ByModel = true
		default:
			return q, fmt.Errorf("%w: groupBy takes hour or day, user, model, kind and outcome, not %q", ErrQuery, g)
		}
	}
	switch {
	case grains > 1:
		return q, fmt.Errorf("%w: groupBy takes one of hour and day", ErrQuery)
	case q.ByUser && q.Grain == GrainHour:
		return q, fmt.Errorf("%w: usage by user is by day, not by hour", ErrQuery)
	}
	step, longest := 24*time.Hour, MaxDayWindow
	if q.Grain == GrainHour {
		step, longest = time.Hour, MaxHourWindow
	}
	end, err := parseTime("to", to, now)
	if err != nil {
		return q, err
	}
	q.To = ceil(end, step)
	start, err := parseTime("from", from, q.To.Add(-30*step))
	if err != nil {
		return q, err
	}
	q.From = start.Truncate(step)
	switch {
	case !q.From.Before(q.To):
		return q, fmt.Errorf("%w: from must be before to", ErrQuery)
	case q.To.Sub(q.From) > longest:
		return q, fmt.Errorf("%w: at most %d %ss at a time", ErrQuery, longest/step, q.Grain)
	}
	return q, nil
}

// parseTime reads a query's time parameter (RFC 3339 or a UTC date); "" is def.
func parseTime(name, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: %s must be RFC 3339 (2026-12-01T00:00:00Z) or a date (2026-12-01)", ErrQuery, name)
}

// ceil rounds t up to a multiple of d (UTC, since the epoch).
func ceil(t time.Time, d time.Duration) time.Time {
	if tr := t.Truncate(d); !tr.Equal(t) {
		return tr.Add(d)
	}
	return t
}
