package fakeopenai

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	markerOpen  = "[[fakeopenai:"
	markerClose = "]]"

	finishStop          = "stop"
	finishLength        = "length"
	finishContentFilter = "content_filter"
)

// directives are what the markers of a prompt ask for.
type directives struct {
	status     int           // answer every request with this status; 0 for none
	failStatus int           // answer the first failTimes requests with this status
	failTimes  int           //
	latency    time.Duration // replaces the configured latency if hasLatency
	hasLatency bool
	finish     string // "length" or "content_filter": the answer stops early for that reason
	answer     string // "empty" or "blank": the answer is "" or only whitespace
	filter     string // "prompt": the content filter rejects the prompt with 400
}

// parseDirectives reads the markers of all messages; a later marker of the
// same kind wins.
func parseDirectives(msgs []message) (directives, error) {
	var d directives
	for _, m := range msgs {
		for rest := string(m.Content); ; {
			_, after, ok := strings.Cut(rest, markerOpen)
			if !ok {
				break
			}
			body, after, ok := strings.Cut(after, markerClose)
			if !ok {
				return d, fmt.Errorf("fakeopenai marker %q is not closed with %q", markerOpen+truncate(after, 20), markerClose)
			}
			if err := d.set(body); err != nil {
				return d, fmt.Errorf("fakeopenai marker %q: %w", markerOpen+body+markerClose, err)
			}
			rest = after
		}
	}
	return d, nil
}

func (d *directives) set(body string) error {
	key, value, _ := strings.Cut(body, "=")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	switch key {
	case "status":
		code, err := parseErrorStatus(value)
		if err != nil {
			return err
		}
		d.status = code
	case "fail": // CODExN, or CODE for CODEx1
		code, times, hasTimes := strings.Cut(value, "x")
		n := 1
		if hasTimes {
			var err error
			if n, err = strconv.Atoi(times); err != nil || n < 1 {
				return fmt.Errorf("want fail=CODExN with N >= 1, got %q", value)
			}
		}
		status, err := parseErrorStatus(code)
		if err != nil {
			return err
		}
		d.failStatus, d.failTimes = status, n
	case "latency":
		latency, err := time.ParseDuration(value)
		if err != nil || latency < 0 {
			return fmt.Errorf("want a non-negative duration such as 300ms, got %q", value)
		}
		d.latency, d.hasLatency = latency, true
	case "finish", "answer", "filter":
		return d.setAnswer(key, value)
	default:
		return fmt.Errorf("unknown key %q, want status, fail, latency, finish, answer or filter", key)
	}
	return nil
}

// setAnswer sets the directives that shape the answer rather than fail it.
func (d *directives) setAnswer(key, value string) error {
	allowed := map[string][]string{
		"finish": {finishLength, finishContentFilter},
		"answer": {"empty", "blank"},
		"filter": {"prompt"},
	}[key]
	if !slices.Contains(allowed, value) {
		return fmt.Errorf("want %s=%s, got %q", key, strings.Join(allowed, "|"), value)
	}
	switch key {
	case "finish":
		d.finish = value
	case "answer":
		d.answer = value
	default:
		d.filter = value
	}
	return nil
}

func parseErrorStatus(s string) (int, error) {
	code, err := strconv.Atoi(s)
	if err != nil || code < 400 || code > 599 {
		return 0, fmt.Errorf("want an HTTP error status within 400..599, got %q", s)
	}
	return code, nil
}

// stripMarkers returns s without its markers.
func stripMarkers(s string) string {
	if !strings.Contains(s, markerOpen) {
		return s
	}
	var b strings.Builder
	for {
		before, after, ok := strings.Cut(s, markerOpen)
		b.WriteString(before)
		if !ok {
			return b.String()
		}
		if _, s, ok = strings.Cut(after, markerClose); !ok {
			return b.String()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
