package systemtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/telemetry"
)

// spanTree indexes a job's ended spans.
type spanTree struct {
	spans  []sdktrace.ReadOnlySpan
	byID   map[trace.SpanID]sdktrace.ReadOnlySpan
	traces map[trace.TraceID]bool
}

func (b *bundle) jobSpans(jobID string) spanTree {
	tree := spanTree{byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}, traces: map[trace.TraceID]bool{}}
	for _, s := range b.spans.Ended() {
		if attr(s, string(telemetry.JobIDKey)) != jobID {
			continue
		}
		tree.spans = append(tree.spans, s)
		tree.byID[s.SpanContext().SpanID()] = s
		tree.traces[s.SpanContext().TraceID()] = true
	}
	return tree
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// named returns the spans called name.
func (t spanTree) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range t.spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (t spanTree) parent(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	return t.byID[s.Parent().SpanID()]
}

// children returns the spans of kind under s called name.
func (t spanTree) children(s sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, c := range t.spans {
		if c.Parent().SpanID() == s.SpanContext().SpanID() && c.Name() == name {
			out = append(out, c)
		}
	}
	return out
}

// TestOneTracePerJobTellsTheWholeStory: a job that fails once and then completes is one
// trace: the api's server span → the PRODUCER create span → the worker's CONSUMER span per
// attempt (the retry's a child of the first) → a CLIENT chat span with GenAI attributes →
// the HTTP client span; job id on every span; token attributes equal to the stored usage;
// the status API gives the trace id; no prompt or letter on any span; spans bounded.
func TestOneTracePerJobTellsTheWholeStory(t *testing.T) {
	t.Parallel()
	b, token, id, j := oneJob(t, "SRE at Initech [[fakeopenai:fail=500x1]]", "Pager duty veteran")
	if j.Status != job.StatusCompleted || j.Attempts != 2 {
		t.Fatalf("job %s after %d attempts", j.Status, j.Attempts)
	}
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)
	time.Sleep(100 * time.Millisecond) // the last spans end right after the commits
	tree := b.jobSpans(id)

	if len(tree.traces) != 1 {
		t.Fatalf("the job's %d spans are in %d traces, want 1", len(tree.spans), len(tree.traces))
	}
	servers := tree.named("POST /api/cover-letter")
	creates := tree.named("create cover-letter.generate")
	consumers := tree.named("process cover-letter.generate")
	chats := tree.named("chat fake-gpt")
	if len(servers) != 1 || len(creates) != 1 || len(consumers) != 2 || len(chats) != 2 {
		t.Fatalf("spans: %d server, %d create, %d process, %d chat; want 1, 1, 2, 2\n%s", len(servers), len(creates), len(consumers), len(chats), tree)
	}
	server, create := servers[0], creates[0]
	if server.SpanKind() != trace.SpanKindServer || create.SpanKind() != trace.SpanKindProducer || tree.parent(create) != server {
		t.Fatalf("create span (kind %v) is not a PRODUCER child of the server span\n%s", create.SpanKind(), tree)
	}
	first, retry := consumers[0], consumers[1]
	if first.StartTime().After(retry.StartTime()) {
		first, retry = retry, first
	}
	if tree.parent(first) != create || tree.parent(retry) != first {
		t.Fatalf("consumer spans are not create → first attempt → retry\n%s", tree)
	}
	for _, c := range consumers {
		if c.SpanKind() != trace.SpanKindConsumer || attr(c, "messaging.system") != "rabbitmq" ||
			attr(c, "messaging.rabbitmq.destination.routing_key") != job.QueueGenerate || attr(c, "messaging.operation.type") != "process" ||
			attr(c, "messaging.message.id") == "" || attr(c, "server.address") != "127.0.0.1" {
			t.Fatalf("consumer span %v lacks messaging attributes", c.Attributes())
		}
		if got := tree.children(c, "chat fake-gpt"); len(got) != 1 {
			t.Fatalf("consumer has %d chat spans, want 1\n%s", len(got), tree)
		}
	}
	if first.Status().Code.String() != "Error" || attr(first, "careerops.outcome") != "retry" || attr(retry, "careerops.outcome") != "completed" {
		t.Fatalf("attempt outcomes: %q (%v), %q", attr(first, "careerops.outcome"), first.Status(), attr(retry, "careerops.outcome"))
	}
	okChat := tree.children(retry, "chat fake-gpt")[0]
	failedChat := tree.children(first, "chat fake-gpt")[0]
	if failedChat.Status().Code.String() != "Error" || attr(failedChat, "error.type") != "500" {
		t.Fatalf("failed chat span: %v, error.type %q", failedChat.Status(), attr(failedChat, "error.type"))
	}
	want := map[string]string{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
		"gen_ai.request.model": "fake-gpt", "gen_ai.response.model": "fake-gpt",
		"gen_ai.usage.input_tokens":      fmt.Sprint(j.PromptTokens),
		"gen_ai.usage.output_tokens":     fmt.Sprint(j.CompletionTokens),
		"gen_ai.response.finish_reasons": `["stop"]`,
	}
	for k, v := range want {
		if got := attr(okChat, k); got != v {
			t.Errorf("chat span %s = %q, want %q", k, got, v)
		}
	}
	if okChat.SpanKind() != trace.SpanKindClient {
		t.Fatalf("chat span kind %v", okChat.SpanKind())
	}
	var httpSpans int
	for _, s := range tree.spans {
		if tree.parent(s) == okChat && s.SpanKind() == trace.SpanKindClient && strings.Contains(s.Name(), "POST") {
			httpSpans++
		}
	}
	if httpSpans != 1 {
		t.Fatalf("%d HTTP client spans under the chat span, want 1\n%s", httpSpans, tree)
	}
	if len(tree.named("send cover-letter.generate")) != 2 { // the first message and the retry
		t.Fatalf("send spans: %d, want 2\n%s", len(tree.named("send cover-letter.generate")), tree)
	}
	for _, s := range tree.spans {
		for _, kv := range s.Attributes() {
			if v := kv.Value.String(); strings.Contains(v, "Pager duty") || strings.Contains(v, "Dear Hiring") {
				t.Fatalf("span %s records content in %s without opt-in", s.Name(), kv.Key)
			}
		}
	}
	if n := len(tree.spans); n > 60 {
		t.Fatalf("%d spans for one job with one retry: too many\n%s", n, tree)
	}
	if v := b.status(token, id); v.TraceID != server.SpanContext().TraceID().String() {
		t.Fatalf("status traceId %q, want %s", v.TraceID, server.SpanContext().TraceID())
	}
	t.Logf("trace of job %s (%d spans):\n%s", id, len(tree.spans), tree)
}

// String draws the tree, one span a line: name, kind, duration.
func (t spanTree) String() string {
	var sb strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		fmt.Fprintf(&sb, "%s%s [%s] %s %s\n", strings.Repeat("  ", depth), s.Name(), s.SpanKind(),
			s.EndTime().Sub(s.StartTime()).Round(time.Microsecond), s.Resource().Set().Encoded(attribute.DefaultEncoder()))
		for _, c := range t.spans {
			if c.Parent().SpanID() == s.SpanContext().SpanID() {
				walk(c, depth+1)
			}
		}
	}
	for _, s := range t.spans {
		if _, ok := t.byID[s.Parent().SpanID()]; !ok {
			walk(s, 0)
		}
	}
	return sb.String()
}

// TestJobLogLinesCarryTraceSpanAndJob: every log line about a job has its trace_id, span_id
// and job_id.
func TestJobLogLinesCarryTraceSpanAndJob(t *testing.T) {
	t.Parallel()
	b, _, id, _ := oneJob(t, "Analyst at Globex [[fakeopenai:fail=429x1]]", "Excel")
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)

	var jobLines int
	sc := bufio.NewScanner(strings.NewReader(b.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		msg, _ := line["msg"].(string)
		if !strings.HasPrefix(msg, "worker: job") && !strings.HasPrefix(msg, "worker: attempt") && line["job_id"] == nil {
			continue
		}
		jobLines++
		if line["job_id"] != id || len(fmt.Sprint(line["trace_id"])) != 32 || len(fmt.Sprint(line["span_id"])) != 16 {
			t.Fatalf("job log line without its ids: %s", sc.Text())
		}
	}
	if jobLines < 4 { // started ×2, attempt failed, completed
		t.Fatalf("%d job log lines, want at least 4:\n%s", jobLines, b.logs.String())
	}
}

// TestMetricsCountWhatHappened scrapes both programs after a run: accepted, completed, failed,
// retried, dead-lettered, tokens and durations add up to what the database holds.
func TestMetricsCountWhatHappened(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	token := b.user("a@example.com")
	var ids []string
	for i := range 4 {
		ids = append(ids, b.submit(token, fmt.Sprintf("Job %d at Acme", i), "CV", ""))
	}
	ids = append(ids, b.submit(token, "Flaky at Acme [[fakeopenai:fail=500x1]]", "CV", ""))
	ids = append(ids, b.submit(token, "Rejected at Acme [[fakeopenai:status=400]]", "CV", ""))
	for _, id := range ids {
		b.waitFinal(id, 30*time.Second)
	}
	b.waitCount(0, 10*time.Second, `SELECT count(*) FROM outbox_messages`)
	var tokensIn, tokensOut int
	if err := b.pool.QueryRow(t.Context(), `SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) FROM cover_letter_jobs`).Scan(&tokensIn, &tokensOut); err != nil {
		t.Fatal(err)
	}

	api := scrape(t, b.apiURL+"/metrics")
	worker := scrape(t, "http://"+b.workers[0].addr+"/metrics")
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"accepted", value(api, "careerops_api_jobs_accepted_total", "replay", "false"), 6},
		{"completed", value(worker, "careerops_worker_jobs_finished_total", "status", "completed"), 5},
		{"failed", value(worker, "careerops_worker_jobs_finished_total", "status", "failed"), 1},
		{"retried", value(worker, "careerops_worker_jobs_retried_total"), 1},
		{"started", value(worker, "careerops_worker_jobs_started_total"), 7},
		{"dead-lettered", value(worker, "careerops_worker_messages_dead_lettered_total", "reason", job.ReasonLLMRejected), 1},
		{"input tokens", value(worker, "careerops_worker_llm_tokens_total", "direction", "input"), float64(tokensIn)},
		{"output tokens", value(worker, "careerops_worker_llm_tokens_total", "direction", "output"), float64(tokensOut)},
		{"job durations", count(worker, "careerops_worker_job_duration_seconds"), 5},
		{"queue waits", count(worker, "careerops_worker_queue_wait_seconds"), 7},
		{"LLM calls", count(worker, "careerops_worker_llm_request_duration_seconds"), 7},
		{"in flight", value(worker, "careerops_worker_jobs_in_flight"), 0},
		{"consumer up", value(worker, "careerops_worker_consumer_up", "kind", job.QueueGenerate), 1},
		{"api broker up", value(api, "careerops_broker_connection_up"), 1},
		{"worker database up", value(worker, "careerops_database_up"), 1},
		{"outbox empty", value(api, "careerops_outbox_messages"), 0},
		{"outbox age", value(worker, "careerops_outbox_oldest_message_age_seconds"), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("%s is not Prometheus text: %v", url, err)
	}
	return families
}

// value sums the samples of a counter or gauge whose labels match the label-value pairs.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	for _, m := range matching(families, name, labels) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

// count sums the observation counts of a histogram.
func count(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var n float64
	for _, m := range matching(families, name, labels) {
		n += float64(m.Histogram.GetSampleCount())
	}
	return n
}

func matching(families map[string]*dto.MetricFamily, name string, labels []string) []*dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}
