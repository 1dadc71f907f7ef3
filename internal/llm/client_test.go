package llm

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"absent", nil, 0},
		{"seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"milliseconds header wins", map[string]string{"Retry-After": "3", "retry-after-ms": "1200"}, 1200 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"negative", map[string]string{"Retry-After": "-4"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := parseRetryAfter(h, now); got != tt.want {
				t.Errorf("parseRetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTemporaryStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   bool
	}{
		{0, true}, {400, false}, {401, false}, {403, false}, {404, false}, {408, true}, {409, true},
		{413, false}, {422, false}, {429, true}, {500, true}, {502, true}, {503, true},
	}
	for _, tt := range tests {
		if got := temporaryStatus(tt.status); got != tt.want {
			t.Errorf("temporaryStatus(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}
