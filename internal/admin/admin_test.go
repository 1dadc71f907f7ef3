package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."}))
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("down") }
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name       string
		path       string
		checks     map[string]Check
		wantStatus int
		wantBody   string
	}{
		{"live", "/healthz", nil, 200, `{"status":"ok"}`},
		{"ready", "/readyz", map[string]Check{"database": ok, "broker": ok}, 200,
			`{"ready":true,"checks":{"broker":"ok","database":"ok"}}`},
		{"one down", "/readyz", map[string]Check{"database": ok, "broker": down}, 503,
			`{"ready":false,"checks":{"broker":"unavailable","database":"ok"}}`},
		{"one too slow", "/readyz", map[string]Check{"database": slow}, 503,
			`{"ready":false,"checks":{"database":"unavailable"}}`},
		{"metrics", "/metrics", nil, 200, "test_things_total 0"},
		{"nothing else", "/other", nil, 404, "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			Handler(reg, tt.checks).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			body, err := io.ReadAll(rec.Result().Body)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("GET %s = %d %s, want %d %s", tt.path, rec.Code, body, tt.wantStatus, tt.wantBody)
			}
			if strings.HasSuffix(tt.path, "z") && rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type = %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}
