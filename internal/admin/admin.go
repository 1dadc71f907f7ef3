// Package admin is what operators and orchestrators ask every long-running program: liveness
// (/healthz), readiness (/readyz, the program's dependency checks) and Prometheus metrics
// (/metrics). The api mounts the same handler among its routes; the worker serves it on its
// admin address.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// checkTimeout bounds one /readyz answer: a dependency that does not answer by then is
// unavailable.
const checkTimeout = 2 * time.Second

// Check reports whether a dependency is usable; readiness fails while one is not.
type Check func(ctx context.Context) error

// readiness is the body of /readyz: ready when every check passed, and each check by name
// as "ok" or "unavailable".
type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// Handler serves GET /healthz, GET /readyz (running checks, by name) and GET /metrics (reg).
func Handler(reg *prometheus.Registry, checks map[string]Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := ready(r.Context(), checks)
		status := http.StatusOK
		if !rd.Ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, rd)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// ready runs the checks, each bounded by the same deadline.
func ready(ctx context.Context, checks map[string]Check) readiness {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	rd := readiness{Ready: true, Checks: make(map[string]string, len(checks))}
	for name, check := range checks {
		if err := check(ctx); err != nil {
			rd.Checks[name], rd.Ready = "unavailable", false
			continue
		}
		rd.Checks[name] = "ok"
	}
	return rd
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // maps of strings and bools always marshal
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}
