package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/testkit"
)

// jaegerTrace is a trace as Jaeger's query API returns it.
type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
	// Processes maps a span's processID to its service.
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64  `json:"startTime"`
	Duration  int64  `json:"duration"` // µs
	ProcessID string `json:"processID"`
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s jaegerSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// startJaeger runs Jaeger all-in-one (in-memory storage), every port on loopback, and returns
// its OTLP/HTTP endpoint and query API base URL.
func startJaeger(t *testing.T) (otlp, query string) {
	t.Helper()
	bin := os.Getenv("JAEGER_BIN")
	if bin == "" {
		if os.Getenv("CAREEROPS_REQUIRE_JAEGER") != "" {
			t.Fatal("JAEGER_BIN is not set; `make test` builds Jaeger (scripts/jaeger.sh)")
		}
		t.Skip("JAEGER_BIN not set: run `make test`, or JAEGER_BIN=$(scripts/jaeger.sh) go test …")
	}
	otlpAddr, grpcAddr, queryAddr, queryGRPC := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin,
		"--set=receivers.otlp.protocols.http.endpoint="+otlpAddr,
		"--set=receivers.otlp.protocols.grpc.endpoint="+grpcAddr,
		"--set=extensions.jaeger_query.http.endpoint="+queryAddr,
		"--set=extensions.jaeger_query.grpc.endpoint="+queryGRPC,
		"--set=extensions.jaeger_query.enable_tracing=false",
	)
	cmd.Env = append(os.Environ(), "JAEGER_LISTEN_HOST=127.0.0.1")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("jaeger log:\n%s", logs.String())
		}
	})
	query = "http://" + queryAddr
	if err := testkit.WaitUntil(context.Background(), 60*time.Second, 100*time.Millisecond, func() bool {
		return answers200(query + "/api/services")
	}); err != nil {
		t.Fatalf("jaeger did not start: %v\n%s", err, logs.String())
	}
	return "http://" + otlpAddr, query
}

// TestTraceOfAJobInJaeger runs Jaeger, the api and the worker as processes exporting OTLP to
// it, submits a job whose first LLM call fails, and reads the trace back from Jaeger's query
// API: one trace, both services, server → producer → consumer → chat → HTTP client with the
// right kinds and parents, token attributes equal to the stored usage, both attempts, and a
// bounded number of spans.
func TestTraceOfAJobInJaeger(t *testing.T) {
	t.Parallel()
	otlp, query := startJaeger(t)
	bin := binaries(t)
	dbURL, amqpURL := testkit.NewDatabaseURL(t), testkit.NewVhostURL(t)
	llmAddr, apiAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := programEnv(dbURL, amqpURL, llmAddr, apiAddr, adminAddr,
		"WORKER_RETRY_BASE_DELAY=50ms", "WORKER_RETRY_MAX_DELAY=100ms",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+otlp, "OTEL_BSP_SCHEDULE_DELAY=100")
	for _, p := range [][]string{{"fakeopenai", "--addr", llmAddr}, {"api"}, {"worker"}} {
		startProgram(t, bin, env, nil, p[0], p[1:]...)
	}
	waitReady(t, "http://"+apiAddr+"/readyz")
	waitReady(t, "http://"+adminAddr+"/readyz")

	conn, err := pgxConnect(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	token := userToken(t, dbURL, "j@example.com")
	b := &bundle{t: t, apiURL: "http://" + apiAddr}
	jobID := b.submit(token, "Observability Engineer at Honeycomb [[fakeopenai:fail=500x1]]", "OpenTelemetry since 2019", "")
	v := b.waitStatus(token, jobID, 30*time.Second, job.StatusCompleted)
	var promptTokens, completionTokens int
	if err := conn.QueryRow(context.Background(), `SELECT prompt_tokens, completion_tokens FROM cover_letter_jobs WHERE job_id = $1`, jobID).
		Scan(&promptTokens, &completionTokens); err != nil {
		t.Fatal(err)
	}

	// Read the trace back until the last spans (the completion's publish) have arrived.
	var tr jaegerTrace
	if err := testkit.WaitUntil(context.Background(), 30*time.Second, 200*time.Millisecond, func() bool {
		tr = fetchTrace(t, query, v.TraceID)
		return countOp(tr, "send cover-letter.completed") == 1 && countOp(tr, "process cover-letter.generate") == 2
	}); err != nil {
		t.Fatalf("trace %s incomplete in Jaeger after 30 s:\n%s", v.TraceID, drawJaeger(tr))
	}
	t.Logf("trace %s as Jaeger returned it (%d spans):\n%s", tr.TraceID, len(tr.Spans), drawJaeger(tr))

	byID := map[string]jaegerSpan{}
	services := map[string]bool{}
	for _, s := range tr.Spans {
		byID[s.SpanID] = s
		services[tr.Processes[s.ProcessID].ServiceName] = true
		if s.TraceID != v.TraceID {
			t.Fatalf("span %s in trace %s", s.OperationName, s.TraceID)
		}
		if s.tag("careerops.job.id") != jobID {
			t.Errorf("span %s lacks careerops.job.id", s.OperationName)
		}
	}
	if !services["careerops-api"] || !services["careerops-worker"] || len(services) != 2 {
		t.Fatalf("services in the trace: %v", services)
	}
	one := func(name, kind string) jaegerSpan {
		t.Helper()
		var found []jaegerSpan
		for _, s := range tr.Spans {
			if s.OperationName == name {
				found = append(found, s)
			}
		}
		if len(found) == 0 {
			t.Fatalf("no %q span", name)
		}
		sort.Slice(found, func(i, j int) bool { return found[i].StartTime < found[j].StartTime })
		if k := found[0].tag("span.kind"); k != kind {
			t.Fatalf("%s has kind %q, want %s", name, k, kind)
		}
		return found[len(found)-1] // the last attempt
	}
	server := one("POST /api/cover-letter", "server")
	producer := one("create cover-letter.generate", "producer")
	consumer := one("process cover-letter.generate", "consumer")
	chat := one("chat fake-gpt", "client")
	var httpClient jaegerSpan
	for _, s := range tr.Spans {
		if s.parent() == chat.SpanID && s.tag("span.kind") == "client" {
			httpClient = s
		}
	}
	if httpClient.SpanID == "" {
		t.Fatal("no HTTP client span under the chat span")
	}
	if producer.parent() != server.SpanID || chat.parent() != consumer.SpanID {
		t.Fatal("broken chain: server → producer, consumer → chat")
	}
	// The last attempt's consumer descends from the producer through the first attempt.
	first := byID[consumer.parent()]
	if first.OperationName != "process cover-letter.generate" || first.parent() != producer.SpanID {
		t.Fatalf("retry's parent is %q, whose parent is not the producer", first.OperationName)
	}
	if got := chat.tag("gen_ai.usage.input_tokens"); got != fmt.Sprint(promptTokens) {
		t.Errorf("gen_ai.usage.input_tokens = %s, database says %d", got, promptTokens)
	}
	if got := chat.tag("gen_ai.usage.output_tokens"); got != fmt.Sprint(completionTokens) {
		t.Errorf("gen_ai.usage.output_tokens = %s, database says %d", got, completionTokens)
	}
	for _, k := range []string{"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.response.finish_reasons"} {
		if chat.tag(k) == "" {
			t.Errorf("chat span lacks %s", k)
		}
	}
	if countOp(tr, "chat fake-gpt") != 2 {
		t.Errorf("%d chat spans, want one per attempt (2)", countOp(tr, "chat fake-gpt"))
	}
	if len(tr.Spans) > 60 {
		t.Errorf("%d spans for one job: span explosion", len(tr.Spans))
	}
}

func fetchTrace(t *testing.T, query, traceID string) jaegerTrace {
	t.Helper()
	resp, err := http.Get(query + "/api/traces/" + traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []jaegerTrace `json:"data"`
	}
	if resp.StatusCode == http.StatusNotFound {
		return jaegerTrace{}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Data) == 0 {
		return jaegerTrace{}
	}
	return out.Data[0]
}

func countOp(tr jaegerTrace, name string) int {
	n := 0
	for _, s := range tr.Spans {
		if s.OperationName == name {
			n++
		}
	}
	return n
}

// drawJaeger prints the trace as a tree: operation, service, kind, duration.
func drawJaeger(tr jaegerTrace) string {
	var sb strings.Builder
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	spans := append([]jaegerSpan(nil), tr.Spans...)
	sort.Slice(spans, func(i, j int) bool { return spans[i].StartTime < spans[j].StartTime })
	var walk func(s jaegerSpan, depth int)
	walk = func(s jaegerSpan, depth int) {
		fmt.Fprintf(&sb, "%s%s  (%s, %s, %s)\n", strings.Repeat("  ", depth), s.OperationName,
			tr.Processes[s.ProcessID].ServiceName, s.tag("span.kind"), time.Duration(s.Duration)*time.Microsecond)
		for _, c := range spans {
			if c.parent() == s.SpanID {
				walk(c, depth+1)
			}
		}
	}
	for _, s := range spans {
		if !ids[s.parent()] {
			walk(s, 0)
		}
	}
	return sb.String()
}
