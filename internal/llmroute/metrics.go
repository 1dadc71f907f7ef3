package llmroute

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	calls       *prometheus.CounterVec
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
}

// NewMetrics registers the router's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_llm_endpoint_calls_total",
			Help: "LLM calls by endpoint (primary, fallback) and outcome (ok, transient_error, permanent_error, cancelled)."},
			[]string{"endpoint", "outcome"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "careerops_worker_llm_breaker_state",
			Help: "The circuit breaker of an LLM endpoint: 0 closed, 1 half-open, 2 open (calls go to the fallback)."},
			[]string{"endpoint"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_llm_breaker_transitions_total",
			Help: "State changes of an LLM endpoint's circuit breaker, by the state entered."},
			[]string{"endpoint", "to"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_llm_fallback_calls_total",
			Help: "Calls sent to the fallback endpoint, by why: breaker_open, or primary_failed (retried at once after the primary's temporary failure)."},
			[]string{"reason"}),
	}
	reg.MustRegister(m.calls, m.state, m.transitions, m.fallbacks)
	m.state.WithLabelValues(endpointPrimary).Set(float64(Closed))
	return m
}

func (m *Metrics) call(endpoint, outcome string) {
	if m != nil {
		m.calls.WithLabelValues(endpoint, outcome).Inc()
	}
}

func (m *Metrics) transition(endpoint string, tr Transition) {
	if m == nil || !tr.Changed() {
		return
	}
	m.state.WithLabelValues(endpoint).Set(float64(tr.To))
	m.transitions.WithLabelValues(endpoint, tr.To.String()).Inc()
}

func (m *Metrics) fallback(reason string) {
	if m != nil {
		m.fallbacks.WithLabelValues(reason).Inc()
	}
}
