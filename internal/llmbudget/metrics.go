package llmbudget

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a reservation, the label of careerops_llm_budget_reservations_total.
const (
	outcomeImmediate   = "immediate"   // the call went at once
	outcomeWaited      = "waited"      // the call waited its turn
	outcomeDeferred    = "deferred"    // the call would have waited longer than MaxWait: not made
	outcomeUnavailable = "unavailable" // the budget's table was unreachable: the call went unbudgeted
)

// Metrics are a budget's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	reservations *prometheus.CounterVec
	waited       prometheus.Histogram
	tooMany      prometheus.Counter
}

// NewMetrics registers the budget's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_llm_budget_reservations_total",
			Help: "LLM calls that asked the shared rate budget for their turn, by outcome (immediate, waited, deferred, unavailable)."},
			[]string{"outcome"}),
		waited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "careerops_llm_budget_wait_seconds", Help: "Time LLM calls waited for their turn in the shared rate budget (calls that waited).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}}),
		tooMany: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careerops_llm_rate_limited_total", Help: "LLM calls the provider answered 429 (each pauses the shared budget for its Retry-After)."}),
	}
	reg.MustRegister(m.reservations, m.waited, m.tooMany)
	return m
}

func (m *Metrics) reserved(outcome string, wait time.Duration) {
	if m == nil {
		return
	}
	m.reservations.WithLabelValues(outcome).Inc()
	if outcome == outcomeWaited {
		m.waited.Observe(wait.Seconds())
	}
}

func (m *Metrics) rateLimited() {
	if m != nil {
		m.tooMany.Inc()
	}
}
