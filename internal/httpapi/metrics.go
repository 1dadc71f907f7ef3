package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.HistogramVec
	accepted *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "careerops_api_http_request_duration_seconds",
			Help:    "Duration of HTTP requests, by method, route and status code.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"method", "route", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_api_jobs_accepted_total",
			Help: "Jobs accepted (202), and idempotent replays answered with an existing job (replay=\"true\").",
		}, []string{"replay"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.accepted)
	}
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}
