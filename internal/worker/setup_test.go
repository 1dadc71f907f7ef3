package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.uber.org/goleak"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testUser owns the jobs of the tests; setup creates it.
const testUser = 7

// testBundle is what a Worker under test runs against: the real PostgreSQL and jobstore (the
// cover letters' runs with faults to inject), an in-memory delivery source, a test LLM inside
// the cover-letter kind, and recorders for progress, spans and metrics.
type testBundle struct {
	pool     *pgxpool.Pool
	store    *jobstore.Store // the worker's Processes; reads jobs back
	runs     *faultyRuns     // the worker's Runs: the cover letters'
	source   *source
	llm      *testLLM
	progress *progressRecorder
	spans    *tracetest.SpanRecorder
	metrics  *Metrics
	registry *prometheus.Registry // the worker's metrics and the kind's LLM metrics

	sub  *subscription // the worker's subscription the test delivers to
	tag  uint64
	stop func() // stops Run and waits for it to return (jobs in flight drained)
}

// testConfig is what setup builds a Worker from: its Config, and the deps of the cover-letter
// kind it runs (whose LLM is always the bundle's test LLM).
type testConfig struct {
	Config
	letters kinds.CoverLetterDeps
}

// setup builds a Worker of the cover-letter kind on a fresh database; opts adjust its Config
// and the kind's deps. Set the bundle's fakes, then call start.
func setup(t *testing.T, opts ...func(*testConfig)) (*Worker, *testBundle) {
	t.Helper()
	pool, _ := testkit.NewPool(t)
	if _, err := pool.Exec(context.Background(), `INSERT INTO users (id, email) VALUES ($1, 'test@example.com')`, testUser); err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	reg := prometheus.NewRegistry()
	tb := &testBundle{
		pool:     pool,
		store:    jobstore.New(pool),
		source:   &source{subscribed: make(chan *subscription, 16)},
		llm:      &testLLM{started: make(chan struct{}, 16)},
		progress: &progressRecorder{},
		spans:    spans,
		metrics:  NewMetrics(reg),
		registry: reg,
	}
	cfg := testConfig{
		Config: Config{
			Telemetry:     telemetry.New(slog.New(slog.DiscardHandler), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
			Metrics:       tb.metrics,
			Progress:      tb.progress,
			RetryMaxDelay: time.Hour,
		},
		letters: kinds.CoverLetterDeps{Progress: tb.progress, Metrics: kinds.NewLLMMetrics(reg)},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	cfg.letters.LLM = tb.llm
	k := kinds.CoverLetter(cfg.letters)
	tb.runs = &faultyRuns{Runs: tb.store.Runs(k.Spec), failing: map[string]int{}, calls: map[string]int{}}
	return New(k, tb.source, tb.runs, tb.store, cfg.Config), tb
}

// start runs w until the test ends or stop is called.
func (tb *testBundle) start(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	tb.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(tb.stop)
}

// generateMessage is a valid job.
func generateMessage(id string) job.GenerateMessage {
	return job.GenerateMessage{JobID: id, UserID: testUser, JobDescription: "Engineer", CVText: "CV", Tone: job.ToneConcise, CreatedAt: time.Now()}
}

// message is a valid job message for a job with id, as the outbox would publish it.
func (tb *testBundle) message(t *testing.T, id string) broker.Delivery {
	t.Helper()
	body, err := json.Marshal(generateMessage(id))
	if err != nil {
		t.Fatal(err)
	}
	return broker.Delivery{Body: body, MessageID: id + "/0", RoutingKey: job.QueueGenerate,
		Headers: map[string]any{job.HeaderJobID: id, job.HeaderDueAt: time.Now().UTC().Format(time.RFC3339Nano),
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
}

// claimRequest asks for the job of generateMessage(id) as another worker would, for a lease
// of an hour.
func claimRequest(t *testing.T, id string) jobstore.ClaimRequest {
	t.Helper()
	body, err := json.Marshal(generateMessage(id))
	if err != nil {
		t.Fatal(err)
	}
	env, args, err := job.DecodeMessage(body, job.MaxGenerateMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	return jobstore.ClaimRequest{Envelope: env, Args: args, LeaseFor: time.Hour}
}

// claim claims job-1 as another worker would: it is processing under a lease of an hour.
func (tb *testBundle) claim(t *testing.T) jobstore.Lease {
	t.Helper()
	_, lease, err := tb.runs.Runs.Claim(context.Background(), claimRequest(t, "job-1"))
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

// deliver hands d to the worker, once it took it, and returns the recorder of its settlement.
func (tb *testBundle) deliver(t *testing.T, d broker.Delivery) *acker {
	t.Helper()
	for tb.sub == nil || !tb.sub.open() {
		select {
		case tb.sub = <-tb.source.subscribed:
		case <-time.After(20 * time.Second):
			t.Fatal("the worker did not subscribe")
		}
	}
	tb.tag++
	a, ok := d.Acknowledger.(*acker)
	if !ok {
		a = newAcker()
		d.Acknowledger = a
	}
	d.DeliveryTag = tb.tag
	if !tb.sub.send(d) {
		t.Fatal("the subscription closed before the delivery")
	}
	return a
}

// job reads a cover letter's job from the database.
func (tb *testBundle) job(t *testing.T, id string) jobstore.Job {
	t.Helper()
	j, err := tb.store.GetAny(context.Background(), id)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// outboxRow is a message the worker's transactions wrote.
type outboxRow struct {
	RoutingKey, MessageID string
	Headers               map[string]string
	Body                  []byte
	AvailableAt           time.Time
}

// outbox lists the messages written, oldest first.
func (tb *testBundle) outbox(t *testing.T) []outboxRow {
	t.Helper()
	rows, err := tb.pool.Query(context.Background(),
		`SELECT routing_key, message_id, headers, body, available_at FROM outbox_messages ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.RoutingKey, &r.MessageID, &r.Headers, &r.Body, &r.AvailableAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// result is what became of the delivery of job-1: how it was settled, the job's status
// after (noJob: no row), the queues of the messages written, and its span's outcome.
type result struct {
	settled string
	status  job.Status
	outbox  []string
	outcome string
}

// noJob is the status of a job that does not exist.
const noJob job.Status = "(no job)"

// check compares what became of the delivery of job-1, settled through a, with want, and
// returns the job: call after stop.
func (tb *testBundle) check(t *testing.T, a *acker, want result) jobstore.Job {
	t.Helper()
	if got := a.settled(); !slices.Equal(got, []string{want.settled}) {
		t.Errorf("settled %v, want %s once", got, want.settled)
	}
	j, err := tb.store.GetAny(context.Background(), "job-1")
	switch {
	case errors.Is(err, jobstore.ErrNotFound):
		j.Status = noJob
	case err != nil:
		t.Fatal(err)
	}
	if j.Status != want.status {
		t.Errorf("job %s (%q), want %s", j.Status, j.Error, want.status)
	}
	if keys := routingKeys(tb.outbox(t)); !slices.Equal(keys, want.outbox) {
		t.Errorf("outbox %v, want %v", keys, want.outbox)
	}
	if got := tb.outcome(t); got != want.outcome {
		t.Errorf("outcome %q, want %q", got, want.outcome)
	}
	if t.Failed() {
		t.FailNow()
	}
	return j
}

// routingKeys lists the queues of the outbox's messages, oldest first.
func routingKeys(rows []outboxRow) []string {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.RoutingKey
	}
	return keys
}

// span returns the attributes of the one delivery span ended: call after stop.
func (tb *testBundle) span(t *testing.T) map[attribute.Key]attribute.Value {
	t.Helper()
	ended := tb.spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range ended[0].Attributes() {
		attrs[kv.Key] = kv.Value
	}
	return attrs
}

// outcome is the careerops.outcome of the one delivery span.
func (tb *testBundle) outcome(t *testing.T) string {
	t.Helper()
	return tb.span(t)[outcomeKey].AsString()
}

// value reads a counter or a gauge, or how many samples a histogram holds.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	t.Fatalf("metric %v is no counter, gauge or histogram", m.Desc())
	return 0
}

// gathered reads the metric called name whose label is labelValue from the bundle's registry
// (the kind's LLM metrics live there): a counter's value, or how many samples a histogram
// holds; 0 if it has no such series.
func (tb *testBundle) gathered(t *testing.T, name, label, labelValue string) float64 {
	t.Helper()
	families, err := tb.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != label || l.GetValue() != labelValue {
					continue
				}
				if m.Histogram != nil {
					return float64(m.Histogram.GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// eventually waits up to 20 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// source is an in-memory Source: each Subscribe opens a subscription the test delivers to.
type source struct {
	subscribed chan *subscription
	failFirst  int // Subscribe fails this many times first; set before start

	subscribes atomic.Int32
}

func (s *source) Subscribe(ctx context.Context, _ int) (<-chan broker.Delivery, error) {
	if n := s.subscribes.Add(1); int(n) <= s.failFirst {
		return nil, fmt.Errorf("test: broker away (%d)", n)
	}
	sub := &subscription{ch: make(chan broker.Delivery), died: make(chan struct{})}
	go func() {
		select {
		case <-ctx.Done():
		case <-sub.died:
		}
		sub.close()
	}()
	s.subscribed <- sub
	return sub.ch, nil
}

func (s *source) ServerAttributes() []attribute.KeyValue {
	return []attribute.KeyValue{semconv.ServerAddress("rabbitmq.test"), semconv.ServerPort(5672)}
}

// subscription is one of the source's: its deliveries, until ctx ends or the test kills it.
type subscription struct {
	ch       chan broker.Delivery
	died     chan struct{}
	killOnce sync.Once

	mu     sync.Mutex
	closed bool
}

// send hands d over, waiting for the worker to take it; false if the subscription closed.
func (s *subscription) send(d broker.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.ch <- d
	return true
}

func (s *subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

func (s *subscription) open() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed
}

// kill ends the subscription as a channel's death would.
func (s *subscription) kill() { s.killOnce.Do(func() { close(s.died) }) }

// acker records how the worker settled a delivery: "ack", "requeue" or "drop".
type acker struct {
	panicAfterAck bool

	mu    sync.Mutex
	calls []string
	done  chan struct{} // closed at the first settlement
	once  sync.Once
}

func newAcker() *acker { return &acker{done: make(chan struct{})} }

func (a *acker) record(call string) {
	a.mu.Lock()
	a.calls = append(a.calls, call)
	a.mu.Unlock()
	a.once.Do(func() { close(a.done) })
}

func (a *acker) Ack(uint64) error {
	a.record("ack")
	if a.panicAfterAck {
		panic("test: panic after the ack")
	}
	return nil
}

func (a *acker) Nack(_ uint64, requeue bool) error {
	if requeue {
		a.record("requeue")
	} else {
		a.record("drop")
	}
	return nil
}

// wait waits for the first settlement.
func (a *acker) wait(t *testing.T) {
	t.Helper()
	receive(t, a.done, "the delivery's settlement")
}

// settled lists the settlements: call after stop. A delivery is settled once.
func (a *acker) settled() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

// testLLM writes "Dear team," in two pieces, unless answer says otherwise.
type testLLM struct {
	answer  func(ctx context.Context, onDelta func(string)) (llm.Completion, error) // set before start
	started chan struct{}                                                           // a value per call, as it starts
}

func (l *testLLM) Stream(ctx context.Context, _, _ string, onDelta func(string)) (llm.Completion, error) {
	select {
	case l.started <- struct{}{}:
	default:
	}
	if l.answer != nil {
		return l.answer(ctx, onDelta)
	}
	onDelta("Dear ")
	onDelta("team,")
	return llm.Completion{Text: "Dear team,", Model: "test-model", PromptTokens: 10, CompletionTokens: 3}, nil
}

// waitStarted waits for the LLM to be called.
func (l *testLLM) waitStarted(t *testing.T) {
	t.Helper()
	receive(t, l.started, "the LLM call")
}

// receive waits up to 20 s for a value from c, or for it to close.
func receive(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// failing is an LLM answer that fails with err.
func failing(err error) func(context.Context, func(string)) (llm.Completion, error) {
	return func(context.Context, func(string)) (llm.Completion, error) { return llm.Completion{}, err }
}

// hanging is an LLM answer that waits for its context to end.
func hanging(ctx context.Context, _ func(string)) (llm.Completion, error) {
	<-ctx.Done()
	return llm.Completion{}, fmt.Errorf("llm: %w", context.Cause(ctx))
}

// progressRecorder keeps the progress events published, as if someone watched every job.
type progressRecorder struct {
	mu     sync.Mutex
	events []progress.Event
}

func (p *progressRecorder) Watched(string) bool { return true }

func (p *progressRecorder) Publish(e progress.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
}

// statuses lists the status events' statuses and the delta events' text, in order.
func (p *progressRecorder) statuses() (statuses []job.Status, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.Type == progress.TypeStatus {
			statuses = append(statuses, e.Status)
		} else {
			text += e.Text
		}
	}
	return statuses, text
}

// errOutage is what a store call returns while the database is "down".
var errOutage = errors.New("test: database unreachable")

// faultyRuns are the cover letters' real runs with faults a test injects per operation: a
// number of outages (then the call goes through), or a panic.
type faultyRuns struct {
	*jobstore.Runs

	mu      sync.Mutex
	failing map[string]int // op → calls left that fail with errOutage (or errs[op]); -1: all
	errs    map[string]error
	panics  string         // op that panics
	calls   map[string]int // op → calls made
}

// fail makes the next n calls of op fail (n < 0: every call).
func (s *faultyRuns) fail(op string, n int) { s.failWith(op, n, nil) }

// failWith makes the next n calls of op fail with err (nil: an outage).
func (s *faultyRuns) failWith(op string, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[op] = n
	if s.errs == nil {
		s.errs = map[string]error{}
	}
	s.errs[op] = err
}

func (s *faultyRuns) fault(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if s.panics == op {
		panic("test: store panics in " + op)
	}
	if n := s.failing[op]; n != 0 {
		s.failing[op] = n - 1
		return fmt.Errorf("jobstore: %s: %w", op, cmp.Or(s.errs[op], errOutage))
	}
	return nil
}

func (s *faultyRuns) callsOf(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *faultyRuns) Claim(ctx context.Context, r jobstore.ClaimRequest) (jobstore.Run, jobstore.Lease, error) {
	if err := s.fault("claim"); err != nil {
		return jobstore.Run{}, jobstore.Lease{}, err
	}
	return s.Runs.Claim(ctx, r)
}

func (s *faultyRuns) Complete(ctx context.Context, l jobstore.Lease, result json.RawMessage, headers map[string]string) (jobstore.Run, error) {
	if err := s.fault("complete"); err != nil {
		return jobstore.Run{}, err
	}
	return s.Runs.Complete(ctx, l, result, headers)
}

func (s *faultyRuns) Retry(ctx context.Context, l jobstore.Lease, errMsg string, runAfter time.Time, headers map[string]string) (jobstore.Run, error) {
	if err := s.fault("retry"); err != nil {
		return jobstore.Run{}, err
	}
	return s.Runs.Retry(ctx, l, errMsg, runAfter, headers)
}

func (s *faultyRuns) Fail(ctx context.Context, l jobstore.Lease, errMsg string, headers map[string]string, dl jobstore.DeadLetter) (jobstore.Run, error) {
	if err := s.fault("fail"); err != nil {
		return jobstore.Run{}, err
	}
	return s.Runs.Fail(ctx, l, errMsg, headers, dl)
}

func (s *faultyRuns) DeadLetterMessage(ctx context.Context, id string, dl jobstore.DeadLetter) error {
	if err := s.fault("dead-letter"); err != nil {
		return err
	}
	return s.Runs.DeadLetterMessage(ctx, id, dl)
}
