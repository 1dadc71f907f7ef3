package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/llm"
)

// Metrics are the worker's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	startedTotal  prometheus.Counter
	finishedTotal *prometheus.CounterVec
	retriedTotal  prometheus.Counter
	deadLetters   *prometheus.CounterVec
	inFlight      prometheus.Gauge
	consumer      prometheus.Gauge
	llmDuration   *prometheus.HistogramVec
	jobDuration   prometheus.Histogram
	queueWaits    prometheus.Histogram
	tokens        *prometheus.CounterVec
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		startedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careerops_worker_jobs_started_total", Help: "Job attempts started (claims of a job)."}),
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_jobs_finished_total", Help: "Jobs that reached a final status, by status and failure reason."},
			[]string{"status", "reason"}),
		retriedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careerops_worker_jobs_retried_total", Help: "Attempts that failed transiently and were scheduled again."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_messages_dead_lettered_total", Help: "Messages sent to the DLQ, by reason."},
			[]string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "careerops_worker_jobs_in_flight", Help: "Jobs being processed now."}),
		consumer: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "careerops_worker_consumer_up", Help: "1 while the worker consumes from RabbitMQ."}),
		llmDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "careerops_worker_llm_request_duration_seconds", Help: "Duration of LLM calls, any wait for the rate budget included, by outcome (ok, transient_error, permanent_error, cancelled, deferred: not made).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}}, []string{"outcome"}),
		jobDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "careerops_worker_job_duration_seconds", Help: "Time from a job's creation to its completion.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}}),
		queueWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "careerops_worker_queue_wait_seconds", Help: "Time from a job attempt becoming due (created, or its retry time) to a worker taking it.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_llm_tokens_total", Help: "LLM tokens used by completed jobs, by direction (input, output)."},
			[]string{"direction"}),
	}
	reg.MustRegister(m.startedTotal, m.finishedTotal, m.retriedTotal, m.deadLetters, m.inFlight, m.consumer, m.llmDuration, m.jobDuration, m.queueWaits, m.tokens)
	return m
}

func (m *Metrics) consumerUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.consumer.Set(1)
	} else {
		m.consumer.Set(0)
	}
}

// jobStarted counts a claimed job; call the returned func when the attempt ends.
func (m *Metrics) jobStarted() (ended func()) {
	if m == nil {
		return func() {}
	}
	m.startedTotal.Inc()
	m.inFlight.Inc()
	return m.inFlight.Dec
}

func (m *Metrics) retried() {
	if m != nil {
		m.retriedTotal.Inc()
	}
}

func (m *Metrics) deadLettered(reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) llmCall(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.llmDuration.WithLabelValues(llm.Outcome(err)).Observe(d.Seconds())
}

func (m *Metrics) finished(status job.Status, reason string, total time.Duration, out llm.Completion) {
	if m == nil {
		return
	}
	if reason != "" {
		m.deadLetters.WithLabelValues(reason).Inc()
	}
	m.finishedTotal.WithLabelValues(string(status), reason).Inc()
	if status == job.StatusCompleted {
		m.jobDuration.Observe(total.Seconds())
		m.tokens.WithLabelValues("input").Add(float64(out.PromptTokens))
		m.tokens.WithLabelValues("output").Add(float64(out.CompletionTokens))
	}
}

func (m *Metrics) queueWait(d time.Duration) {
	if m != nil {
		m.queueWaits.Observe(max(d, 0).Seconds())
	}
}
