package llmroute

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
)

const (
	primaryModel    = "gpt-4o"
	fallbackModel   = "gpt-4o-mini"
	attemptTimeout  = 10 * time.Second
	testPrompt      = "Job description:\nPlumber at Mario Bros\n\nCV:\nTen years of pipes."
	contentFiltered = "[[fakeopenai:filter=prompt]] " + testPrompt
)

// testBundle is a Fallback's surroundings: two real fakeopenai servers (OpenAI's wire as the
// primary, Azure's as the fallback), its clock, metrics and spans.
type testBundle struct {
	primary, fallback *fakeopenai.Server
	primaryURL        string
	clock             *clock
	reg               *prometheus.Registry
	spans             *tracetest.SpanRecorder
	tel               *telemetry.Telemetry
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// setup starts the two fakes and returns a Fallback over them.
func setup(t *testing.T, primaryFaults fakeopenai.Faults, breaker BreakerConfig) (*Fallback, *testBundle) {
	t.Helper()
	b := &testBundle{clock: &clock{now: time.Now()}, reg: prometheus.NewRegistry(), spans: tracetest.NewSpanRecorder()}
	b.tel = telemetry.New(slog.Default(), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b.spans)))
	var fallbackURL string
	b.primary, b.primaryURL = testkit.StartFakeOpenAI(t, fakeopenai.Config{Profile: fakeopenai.ProfileOpenAI})
	if err := b.primary.SetFaults(primaryFaults); err != nil {
		t.Fatal(err)
	}
	b.fallback, fallbackURL = testkit.StartFakeOpenAI(t, fakeopenai.Config{Profile: fakeopenai.ProfileAzure})
	primary := llm.New(llm.Config{BaseURL: b.primaryURL + "/v1", APIKey: "sk-primary", Model: primaryModel,
		Timeout: attemptTimeout, Telemetry: b.tel})
	fallback := llm.New(llm.Config{APIType: llm.APITypeAzure, BaseURL: fallbackURL, APIKey: "azure-key",
		Model: fallbackModel, Deployment: "letters-fallback", Timeout: attemptTimeout, Telemetry: b.tel})
	f := New(Config{
		Primary: primary, Fallback: fallback, PrimaryModel: primaryModel, FallbackModel: fallbackModel,
		Breaker: breaker, AttemptTimeout: attemptTimeout, Telemetry: b.tel, Metrics: NewMetrics(b.reg), Now: b.clock.Now,
	})
	return f, b
}

// write asks f for a letter under a span of its own and returns the letter, the span's
// endpoint attribute and the error.
func (b *testBundle) write(t *testing.T, f *Fallback, prompt string) (llm.Completion, string, error) {
	t.Helper()
	ctx, span := b.tel.Tracer("test").Start(context.Background(), "job")
	var deltas strings.Builder
	out, err := f.Stream(ctx, "Write a cover letter.", prompt, func(s string) { deltas.WriteString(s) })
	span.End()
	if err == nil && strings.TrimSpace(deltas.String()) != out.Text {
		t.Errorf("the deltas handed on are not the letter: %q vs %q", deltas.String(), out.Text)
	}
	ended := b.spans.Ended()
	for _, kv := range ended[len(ended)-1].Attributes() {
		if kv.Key == endpointKey {
			return out, kv.Value.AsString(), err
		}
	}
	return out, "", err
}

func TestFallbackTakesOverWhileThePrimaryFailsAndAProbeClosesTheBreaker(t *testing.T) {
	t.Parallel()
	f, b := setup(t, fakeopenai.Faults{FailRate: 1}, BreakerConfig{Failures: 2, Cooldown: 30 * time.Second})

	// Two calls fail on the primary (500) and are written at once by the fallback; the second
	// failure in a row opens the breaker.
	for i, wantState := range []State{Closed, Open} {
		out, endpoint, err := b.write(t, f, testPrompt)
		if err != nil || out.Model != fallbackModel || endpoint != endpointFallback {
			t.Fatalf("call %d: %q by model %q on %q, err %v; want the fallback's letter", i+1, out.Text, out.Model, endpoint, err)
		}
		if f.State() != wantState {
			t.Fatalf("after call %d: breaker %s, want %s", i+1, f.State(), wantState)
		}
	}
	// Open: the primary is not asked at all.
	out, endpoint, err := b.write(t, f, testPrompt)
	if err != nil || out.Model != fallbackModel || endpoint != endpointFallback {
		t.Fatalf("while open: model %q on %q, err %v; want the fallback", out.Model, endpoint, err)
	}
	if got := b.primary.Stats().Requests; got != 2 {
		t.Fatalf("the primary got %d requests, want 2: none while the breaker is open", got)
	}

	// The primary recovers; within the cool-down nothing changes, after it one probe closes.
	if err := b.primary.SetFaults(fakeopenai.Faults{}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(29 * time.Second)
	if out, _, _ := b.write(t, f, testPrompt); out.Model != fallbackModel {
		t.Fatalf("within the cool-down the letter came from %q, want the fallback", out.Model)
	}
	b.clock.Advance(time.Second)
	out, endpoint, err = b.write(t, f, testPrompt)
	if err != nil || out.Model != primaryModel || endpoint != endpointPrimary || f.State() != Closed {
		t.Fatalf("the probe: model %q on %q, err %v, breaker %s; want the primary's letter and closed", out.Model, endpoint, err, f.State())
	}

	checkCounts(t, b.reg, map[string]float64{
		`careerops_worker_llm_fallback_calls_total{reason="primary_failed"}`:                      2,
		`careerops_worker_llm_fallback_calls_total{reason="breaker_open"}`:                        2,
		`careerops_worker_llm_breaker_transitions_total{endpoint="primary",to="open"}`:            1,
		`careerops_worker_llm_breaker_transitions_total{endpoint="primary",to="half_open"}`:       1,
		`careerops_worker_llm_breaker_transitions_total{endpoint="primary",to="closed"}`:          1,
		`careerops_worker_llm_endpoint_calls_total{endpoint="primary",outcome="transient_error"}`: 2,
		`careerops_worker_llm_endpoint_calls_total{endpoint="primary",outcome="ok"}`:              1,
		`careerops_worker_llm_endpoint_calls_total{endpoint="fallback",outcome="ok"}`:             4,
		`careerops_worker_llm_breaker_state{endpoint="primary"}`:                                  0,
	})
	if n := countEvents(b.spans, breakerEvent); n != 3 {
		t.Errorf("%d breaker events on spans, want 3 (open, half_open, closed)", n)
	}
}

func TestFallbackDoesNotSwitchOnPermanentErrors(t *testing.T) {
	t.Parallel()
	f, b := setup(t, fakeopenai.Faults{}, BreakerConfig{Failures: 2})
	// A content filter's refusal is about the text, not the endpoint: the same text is not
	// sent to another provider, and the refusals do not open the breaker.
	for range 3 {
		_, endpoint, err := b.write(t, f, contentFiltered)
		var e *llm.Error
		if !errors.As(err, &e) || e.Reason != llm.ReasonContentFilter || endpoint != endpointPrimary {
			t.Fatalf("got %v on %q, want the primary's content filter refusal", err, endpoint)
		}
	}
	if f.State() != Closed || b.fallback.Stats().Requests != 0 {
		t.Fatalf("breaker %s, fallback asked %d times; want closed and never", f.State(), b.fallback.Stats().Requests)
	}
}

func TestFallbackNeverSplicesAnAnswer(t *testing.T) {
	t.Parallel()
	// The primary streams for 2 s; as its first piece is handed on, its connection breaks.
	f, b := setup(t, fakeopenai.Faults{Latency: 2 * time.Second}, BreakerConfig{})
	conns := &connections{}
	f.cfg.Primary = llm.New(llm.Config{BaseURL: b.primaryURL + "/v1", APIKey: "sk-primary", Model: primaryModel,
		Timeout: attemptTimeout, Transport: &http.Transport{DialContext: conns.dial}})
	var deltas strings.Builder
	_, err := f.Stream(context.Background(), "Write a cover letter.", testPrompt, func(s string) {
		deltas.WriteString(s)
		conns.closeAll()
	})
	if !temporary(err) || deltas.Len() == 0 {
		t.Fatalf("err %v after %d bytes handed on; want a broken stream after part of the letter", err, deltas.Len())
	}
	if n := b.fallback.Stats().Requests; n != 0 {
		t.Fatalf("the fallback was asked %d times after part of the primary's answer was handed on; want never", n)
	}
}

// connections dials TCP connections and can break them all.
type connections struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (c *connections) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := new(net.Dialer).DialContext(ctx, network, addr)
	if err == nil {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
	}
	return conn, err
}

func (c *connections) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close() // a broken connection is the point
	}
}

func TestFallbackKeepsTheAttemptWithinItsTime(t *testing.T) {
	t.Parallel()
	// The primary times out after 7 s of the attempt's 10 (on the test's clock): less than half
	// is left, so the fallback is not tried in this attempt.
	f, b := setup(t, fakeopenai.Faults{}, BreakerConfig{})
	slowPrimary := f.cfg.Primary
	f.cfg.Primary = streamFunc(func(ctx context.Context, system, user string, onDelta func(string)) (llm.Completion, error) {
		b.clock.Advance(7 * time.Second)
		return slowPrimary.Stream(ctx, system, "[[fakeopenai:status=503]] "+user, onDelta)
	})
	_, err := f.Stream(context.Background(), "Write a cover letter.", testPrompt, nil)
	var e *llm.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want the primary's 503", err)
	}
	if n := b.fallback.Stats().Requests; n != 0 {
		t.Fatalf("the fallback was asked %d times with 3 s of 10 left; want never", n)
	}
}

func TestFallbackKeepsTheLongerRetryAfterWhenBothFail(t *testing.T) {
	t.Parallel()
	f, b := setup(t, fakeopenai.Faults{RateLimitRate: 1}, BreakerConfig{})
	if err := b.fallback.SetFaults(fakeopenai.Faults{FailRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, endpoint, err := b.write(t, f, testPrompt)
	var e *llm.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusInternalServerError || e.RetryAfter != fakeopenai.DefaultRetryAfter || endpoint != endpointFallback {
		t.Fatalf("got %v (retry after %s) on %q; want the fallback's 500 with the primary's 429 wait of %s",
			err, e.RetryAfter, endpoint, fakeopenai.DefaultRetryAfter)
	}
}

// streamFunc is an LLM made of a function.
type streamFunc func(ctx context.Context, system, user string, onDelta func(string)) (llm.Completion, error)

func (s streamFunc) Stream(ctx context.Context, system, user string, onDelta func(string)) (llm.Completion, error) {
	return s(ctx, system, user, onDelta)
}

func checkCounts(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
	}
}

func countEvents(rec *tracetest.SpanRecorder, name string) int {
	n := 0
	for _, s := range rec.Ended() {
		for _, e := range s.Events() {
			if e.Name == name {
				n++
			}
		}
	}
	return n
}

func TestFallbackUnderConcurrentCalls(t *testing.T) {
	t.Parallel()
	// 32 calls at once while the primary fails: every one is written by the fallback, the
	// breaker opens once, and the primary sees at most the calls admitted before it opened.
	f, b := setup(t, fakeopenai.Faults{FailRate: 1, Latency: 50 * time.Millisecond}, BreakerConfig{Failures: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			out, err := f.Stream(context.Background(), "Write a cover letter.", testPrompt, func(string) {})
			if err == nil && out.Model != fallbackModel {
				err = errors.New("written by " + out.Model)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.State() != Open || b.fallback.Stats().Completed != 32 {
		t.Fatalf("breaker %s, fallback wrote %d; want open and 32", f.State(), b.fallback.Stats().Completed)
	}
	checkCounts(t, b.reg, map[string]float64{
		`careerops_worker_llm_breaker_transitions_total{endpoint="primary",to="open"}`: 1,
	})
}

func TestFallbackProbeThatPanicsLetsTheNextCallProbe(t *testing.T) {
	t.Parallel()
	f, b := setup(t, fakeopenai.Faults{FailRate: 1}, BreakerConfig{Failures: 1, Cooldown: time.Second})
	if _, _, err := b.write(t, f, testPrompt); err != nil || f.State() != Open {
		t.Fatalf("first call: %v, breaker %s; want the fallback's letter and open", err, f.State())
	}
	if err := b.primary.SetFaults(fakeopenai.Faults{}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Second)
	// The probe's caller panics as the answer streams (the worker recovers such panics).
	func() {
		defer func() { _ = recover() }()
		_, _ = f.Stream(context.Background(), "Write a cover letter.", testPrompt, func(string) { panic("caller's bug") })
	}()
	out, endpoint, err := b.write(t, f, testPrompt)
	if err != nil || endpoint != endpointPrimary || out.Model != primaryModel || f.State() != Closed {
		t.Fatalf("after a panicking probe: %q by %q, err %v, breaker %s; want the next call to probe and close", endpoint, out.Model, err, f.State())
	}
}
