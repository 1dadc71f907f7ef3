package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careerops/jobs/internal/job"
)

// Metrics are the worker's Prometheus metrics, labelled by the job kind. A nil *Metrics
// records nothing.
type Metrics struct {
	startedTotal  *prometheus.CounterVec
	finishedTotal *prometheus.CounterVec
	retriedTotal  *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
	consumer      *prometheus.GaugeVec
	jobDuration   *prometheus.HistogramVec
	queueWaits    *prometheus.HistogramVec
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	kind := []string{"kind"}
	m := &Metrics{
		startedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_jobs_started_total", Help: "Job attempts started (claims of a job), by kind."}, kind),
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_jobs_finished_total", Help: "Jobs that reached a final status, by kind, status and failure reason."},
			[]string{"kind", "status", "reason"}),
		retriedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_jobs_retried_total", Help: "Attempts that failed transiently and were scheduled again, by kind."}, kind),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careerops_worker_messages_dead_lettered_total", Help: "Messages sent to the DLQ, by kind and reason."},
			[]string{"kind", "reason"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "careerops_worker_jobs_in_flight", Help: "Jobs being processed now, by kind."}, kind),
		consumer: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "careerops_worker_consumer_up", Help: "1 while the worker consumes the kind's queue from RabbitMQ."}, kind),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "careerops_worker_job_duration_seconds", Help: "Time from a job's creation to its completion, by kind.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}}, kind),
		queueWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "careerops_worker_queue_wait_seconds", Help: "Time from a job attempt becoming due (created, or its retry time) to a worker taking it, by kind.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}}, kind),
	}
	reg.MustRegister(m.startedTotal, m.finishedTotal, m.retriedTotal, m.deadLetters, m.inFlight, m.consumer, m.jobDuration, m.queueWaits)
	return m
}

// kindMetrics are the metrics of one kind; a nil *kindMetrics records nothing.
type kindMetrics struct {
	m    *Metrics
	kind string
}

func (m *Metrics) forKind(kind string) *kindMetrics {
	if m == nil {
		return nil
	}
	return &kindMetrics{m: m, kind: kind}
}

func (k *kindMetrics) consumerUp(up bool) {
	if k == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	k.m.consumer.WithLabelValues(k.kind).Set(v)
}

// jobStarted counts a claimed job; call the returned func when the attempt ends.
func (k *kindMetrics) jobStarted() (ended func()) {
	if k == nil {
		return func() {}
	}
	k.m.startedTotal.WithLabelValues(k.kind).Inc()
	g := k.m.inFlight.WithLabelValues(k.kind)
	g.Inc()
	return g.Dec
}

func (k *kindMetrics) retried() {
	if k != nil {
		k.m.retriedTotal.WithLabelValues(k.kind).Inc()
	}
}

func (k *kindMetrics) deadLettered(reason string) {
	if k != nil {
		k.m.deadLetters.WithLabelValues(k.kind, reason).Inc()
	}
}

func (k *kindMetrics) finished(status job.Status, reason string, total time.Duration) {
	if k == nil {
		return
	}
	if reason != "" {
		k.m.deadLetters.WithLabelValues(k.kind, reason).Inc()
	}
	k.m.finishedTotal.WithLabelValues(k.kind, string(status), reason).Inc()
	if status == job.StatusCompleted {
		k.m.jobDuration.WithLabelValues(k.kind).Observe(total.Seconds())
	}
}

func (k *kindMetrics) queueWait(d time.Duration) {
	if k != nil {
		k.m.queueWaits.WithLabelValues(k.kind).Observe(max(d, 0).Seconds())
	}
}
