package fakeopenai_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/testkit"
)

const jobPrompt = "Write a cover letter for the job below, based on the CV.\n\nTone: professional\n\n" + fakeopenai.JobAndCV

// start serves a Server configured by cfg and returns it with a go-openai
// client and the base URL of the server.
func start(t *testing.T, cfg fakeopenai.Config) (*fakeopenai.Server, *openai.Client, string) {
	t.Helper()
	srv, url := testkit.StartFakeOpenAI(t, cfg)
	config := openai.DefaultConfig("sk-test")
	config.BaseURL = url + "/v1"
	return srv, openai.NewClientWithConfig(config), url
}

func chat(prompt string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: "You write cover letters."},
			{Role: openai.ChatMessageRoleUser, Content: prompt},
		},
	}
}

// post sends a raw chat-completion request with an API key.
func post(t *testing.T, baseURL, body string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodPost, baseURL+"/v1/chat/completions", body, "Bearer sk-test")
}

func do(t *testing.T, method, url, body, auth string) (*http.Response, []byte) {
	t.Helper()
	header := http.Header{}
	if auth != "" {
		header.Set("Authorization", auth)
	}
	return doWith(t, method, url, body, header)
}

// doWith sends a raw request with these headers and returns the response and its body.
func doWith(t *testing.T, method, url, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func chatBody(prompt string) string {
	b, _ := json.Marshal(map[string]any{
		"model":    "gpt-4o-mini",
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	})
	return string(b)
}

func apiError(t *testing.T, err error) *openai.APIError {
	t.Helper()
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v (%T), want an *openai.APIError", err, err)
	}
	return apiErr
}

func TestChatCompletionWritesLetterFromPrompt(t *testing.T) {
	_, client, _ := start(t, fakeopenai.Config{})

	resp, err := client.CreateChatCompletion(t.Context(), chat(jobPrompt))
	if err != nil {
		t.Fatal(err)
	}

	if resp.Object != "chat.completion" || !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Created == 0 {
		t.Errorf("object, id, created = %q, %q, %d", resp.Object, resp.ID, resp.Created)
	}
	if resp.Model != "gpt-4o-mini" {
		t.Errorf("model = %q, want the requested gpt-4o-mini", resp.Model)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("got %d choices, want 1", len(resp.Choices))
	}
	c := resp.Choices[0]
	if c.Message.Role != openai.ChatMessageRoleAssistant || c.FinishReason != openai.FinishReasonStop {
		t.Errorf("role, finish reason = %q, %q", c.Message.Role, c.FinishReason)
	}
	letter := c.Message.Content
	for _, want := range []string{"Dear Hiring Manager,", "Senior Backend Engineer", "Acme Robotics", "Kubernetes", "Stripe", "Sincerely,\nJane Doe"} {
		if !strings.Contains(letter, want) {
			t.Errorf("letter does not mention %q:\n%s", want, letter)
		}
	}
	u := resp.Usage
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage = %+v, want positive counts adding up", u)
	}
}

func TestChatCompletionIsDeterministicPerPrompt(t *testing.T) {
	_, client, _ := start(t, fakeopenai.Config{})
	complete := func(prompt string) openai.ChatCompletionResponse {
		t.Helper()
		resp, err := client.CreateChatCompletion(t.Context(), chat(prompt))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	a, b := complete(jobPrompt), complete(jobPrompt)
	if a.Choices[0].Message.Content != b.Choices[0].Message.Content || !reflect.DeepEqual(a.Usage, b.Usage) {
		t.Error("the same prompt got different letters or usage")
	}
	other := complete(strings.ReplaceAll(jobPrompt, "Acme Robotics", "Globex"))
	if !strings.Contains(other.Choices[0].Message.Content, "Globex") {
		t.Error("the letter does not follow the prompt")
	}
}

func TestStreamReassemblesTheNonStreamedLetter(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		name := map[bool]string{false: "without usage", true: "with usage"}[includeUsage]
		t.Run(name, func(t *testing.T) {
			_, client, _ := start(t, fakeopenai.Config{})
			want, err := client.CreateChatCompletion(t.Context(), chat(jobPrompt))
			if err != nil {
				t.Fatal(err)
			}

			req := chat(jobPrompt)
			req.Stream = true
			if includeUsage {
				req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
			}
			stream, err := client.CreateChatCompletionStream(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			var (
				letter strings.Builder
				chunks int
				finish openai.FinishReason
				usage  *openai.Usage
			)
			for {
				chunk, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if chunk.Object != "chat.completion.chunk" || chunk.Model != "gpt-4o-mini" {
					t.Errorf("object, model = %q, %q", chunk.Object, chunk.Model)
				}
				if chunk.Usage != nil {
					if len(chunk.Choices) != 0 {
						t.Errorf("usage chunk has %d choices, want none", len(chunk.Choices))
					}
					usage = chunk.Usage
					continue
				}
				chunks++
				letter.WriteString(chunk.Choices[0].Delta.Content)
				if r := chunk.Choices[0].FinishReason; r != "" {
					finish = r
				}
			}

			if got := letter.String(); got != want.Choices[0].Message.Content {
				t.Errorf("streamed letter:\n%s\nwant the non-streamed one:\n%s", got, want.Choices[0].Message.Content)
			}
			if chunks < 20 {
				t.Errorf("got %d chunks, want the letter in small pieces", chunks)
			}
			if finish != openai.FinishReasonStop {
				t.Errorf("finish reason = %q, want stop", finish)
			}
			switch {
			case includeUsage && (usage == nil || !reflect.DeepEqual(*usage, want.Usage)):
				t.Errorf("usage = %v, want %+v", usage, want.Usage)
			case !includeUsage && usage != nil:
				t.Errorf("got usage %+v without asking for it", usage)
			}
		})
	}
}

func TestStreamIsServerSentEvents(t *testing.T) {
	_, _, url := start(t, fakeopenai.Config{})

	resp, body := post(t, url, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)

	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status, content type = %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	for _, e := range events {
		if !strings.HasPrefix(e, "data: ") || strings.Contains(e, "\n") {
			t.Fatalf("malformed event %q", e)
		}
	}
	if last := events[len(events)-1]; last != "data: [DONE]" {
		t.Errorf("last event = %q, want data: [DONE]", last)
	}
	if usage := events[len(events)-2]; !strings.Contains(usage, `"choices":[]`) || !strings.Contains(usage, `"total_tokens"`) {
		t.Errorf("usage event = %q", usage)
	}
}

func TestStatusMarkerAnswersThatStatus(t *testing.T) {
	tests := []struct {
		status   int
		wantType string
	}{
		{400, "invalid_request_error"},
		{401, "invalid_request_error"},
		{429, "requests"},
		{500, "server_error"},
		{503, "server_error"},
	}
	_, client, _ := start(t, fakeopenai.Config{})
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			prompt := strings.Replace(jobPrompt, "Tone:", "[[fakeopenai:status="+strconv.Itoa(tt.status)+"]]\nTone:", 1)
			for range 2 {
				_, err := client.CreateChatCompletion(t.Context(), chat(prompt))
				apiErr := apiError(t, err)
				if apiErr.HTTPStatusCode != tt.status || apiErr.Type != tt.wantType {
					t.Errorf("status, type = %d, %q, want %d, %q", apiErr.HTTPStatusCode, apiErr.Type, tt.status, tt.wantType)
				}
			}
		})
	}
}

func TestFailMarkerFailsFirstRequestsThenSucceeds(t *testing.T) {
	_, _, url := start(t, fakeopenai.Config{RetryAfter: 1500 * time.Millisecond})
	prompt := jobPrompt + "\n[[fakeopenai:fail=429x2]]"

	for i, want := range []int{429, 429, 200, 200} {
		resp, body := post(t, url, chatBody(prompt))
		if resp.StatusCode != want {
			t.Fatalf("request %d: status = %d, want %d: %s", i+1, resp.StatusCode, want, body)
		}
		if want == 429 {
			if got := resp.Header.Get("Retry-After"); got != "2" {
				t.Errorf("Retry-After = %q, want 1.5s rounded up to 2", got)
			}
			if got := resp.Header.Get("retry-after-ms"); got != "1500" {
				t.Errorf("retry-after-ms = %q, want 1500", got)
			}
			var e struct{ Error struct{ Type, Code string } }
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != "requests" || e.Error.Code != "rate_limit_exceeded" {
				t.Errorf("body = %s, want a rate_limit_exceeded error", body)
			}
		}
	}

	// Another prompt with the same marker has a count of its own.
	if resp, _ := post(t, url, chatBody(prompt+" (second)")); resp.StatusCode != 429 {
		t.Errorf("another prompt: status = %d, want 429", resp.StatusCode)
	}
}

func TestMarkersCombine(t *testing.T) {
	_, client, _ := start(t, fakeopenai.Config{})
	prompt := jobPrompt + "\n[[fakeopenai:fail=500x1]] [[fakeopenai:latency=50ms]]"

	begin := time.Now()
	_, err := client.CreateChatCompletion(t.Context(), chat(prompt))
	if apiErr := apiError(t, err); apiErr.HTTPStatusCode != 500 {
		t.Errorf("first request: status = %d, want 500", apiErr.HTTPStatusCode)
	}
	resp, err := client.CreateChatCompletion(t.Context(), chat(prompt))
	if err != nil {
		t.Fatalf("second request: %v", err)
	}
	if elapsed := time.Since(begin); elapsed < 100*time.Millisecond {
		t.Errorf("two requests took %v, want at least 2 × 50ms", elapsed)
	}
	if letter := resp.Choices[0].Message.Content; strings.Contains(letter, "fakeopenai") {
		t.Errorf("the letter quotes the markers:\n%s", letter)
	}
}

func TestRandomFaultsAnswerErrors(t *testing.T) {
	tests := []struct {
		name       string
		cfg        fakeopenai.Config
		wantStatus int
		wantType   string
	}{
		{"fail rate 1 answers 500", fakeopenai.Config{FailRate: 1}, 500, "server_error"},
		{"rate-limit rate 1 answers 429", fakeopenai.Config{RateLimitRate: 1}, 429, "requests"},
		{"rate limits come first", fakeopenai.Config{FailRate: 1, RateLimitRate: 1}, 429, "requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, client, url := start(t, tt.cfg)
			_, err := client.CreateChatCompletion(t.Context(), chat(jobPrompt))
			if apiErr := apiError(t, err); apiErr.HTTPStatusCode != tt.wantStatus || apiErr.Type != tt.wantType {
				t.Errorf("status, type = %d, %q, want %d, %q", apiErr.HTTPStatusCode, apiErr.Type, tt.wantStatus, tt.wantType)
			}
			resp, _ := post(t, url, chatBody(jobPrompt))
			if got := resp.Header.Get("Retry-After"); (tt.wantStatus == 429) != (got == "1") {
				t.Errorf("Retry-After = %q", got)
			}
		})
	}
}

func TestSeedMakesRandomFaultsReproducible(t *testing.T) {
	outcomes := func() []int {
		_, _, url := start(t, fakeopenai.Config{FailRate: 0.5, RateLimitRate: 0.3, Seed: 42})
		var statuses []int
		for range 20 {
			resp, _ := post(t, url, chatBody("hello"))
			statuses = append(statuses, resp.StatusCode)
		}
		return statuses
	}
	a, b := outcomes(), outcomes()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, 200) || !slices.Contains(a, 500) || !slices.Contains(a, 429) {
		t.Errorf("statuses %v, want a mix of 200, 429 and 500", a)
	}
}

func TestLatency(t *testing.T) {
	tests := []struct {
		name     string
		latency  time.Duration
		marker   string
		min, max time.Duration
	}{
		{"configured latency", 100 * time.Millisecond, "", 100 * time.Millisecond, 5 * time.Second},
		{"marker latency", 0, "[[fakeopenai:latency=150ms]]", 150 * time.Millisecond, 5 * time.Second},
		{"marker overrides configured latency", time.Minute, "[[fakeopenai:latency=0s]]", 0, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, client, _ := start(t, fakeopenai.Config{Latency: tt.latency})
			begin := time.Now()
			if _, err := client.CreateChatCompletion(t.Context(), chat(jobPrompt+tt.marker)); err != nil {
				t.Fatal(err)
			}
			if elapsed := time.Since(begin); elapsed < tt.min || elapsed > tt.max {
				t.Errorf("took %v, want within [%v, %v]", elapsed, tt.min, tt.max)
			}
		})
	}
}

func TestStreamSpreadsLatencyOverChunks(t *testing.T) {
	_, client, _ := start(t, fakeopenai.Config{Latency: time.Second})
	req := chat(jobPrompt)
	req.Stream = true

	begin := time.Now()
	stream, err := client.CreateChatCompletionStream(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	firstChunk := time.Since(begin)
	for err == nil {
		_, err = stream.Recv()
	}
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	total := time.Since(begin)
	if firstChunk < 250*time.Millisecond || firstChunk > 900*time.Millisecond || total < time.Second {
		t.Errorf("first chunk after %v, end after %v; want about 250ms and at least 1s", firstChunk, total)
	}
}

func TestClientCancellationStopsRequestEarly(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "completion", true: "stream"}[stream], func(t *testing.T) {
			srv, client, _ := start(t, fakeopenai.Config{Latency: time.Minute})
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()

			req := chat(jobPrompt)
			var err error
			if stream {
				req.Stream = true
				var s *openai.ChatCompletionStream
				if s, err = client.CreateChatCompletionStream(ctx, req); err == nil {
					for err == nil {
						_, err = s.Recv()
					}
					s.Close()
				}
			} else {
				_, err = client.CreateChatCompletion(ctx, req)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error = %v, want the client's deadline", err)
			}
			waitFor(t, func() bool { return srv.Stats().Canceled == 1 })
		})
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, cond)
}

func TestPutFaultsChangesBehaviour(t *testing.T) {
	srv, client, url := start(t, fakeopenai.Config{})
	faultsURL := url + "/_fake/faults"
	complete := func() int {
		_, err := client.CreateChatCompletion(t.Context(), chat(jobPrompt))
		if err != nil {
			return apiError(t, err).HTTPStatusCode
		}
		return http.StatusOK
	}

	if _, body := do(t, http.MethodGet, faultsURL, "", ""); string(body) != `{"latency":"0s","failRate":0,"rateLimitRate":0}`+"\n" {
		t.Errorf("initial faults = %s", body)
	}
	resp, body := do(t, http.MethodPut, faultsURL, `{"latency":"10ms","failRate":1}`, "")
	if resp.StatusCode != http.StatusOK || string(body) != `{"latency":"10ms","failRate":1,"rateLimitRate":0}`+"\n" {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	if want := (fakeopenai.Faults{Latency: 10 * time.Millisecond, FailRate: 1}); srv.Faults() != want {
		t.Errorf("Faults() = %+v, want %+v", srv.Faults(), want)
	}
	if got := complete(); got != http.StatusInternalServerError {
		t.Errorf("with failRate 1: status = %d, want 500", got)
	}

	for _, bad := range []string{`{"failRate":2}`, `{"latency":"soon"}`, `{"fail_rate":1}`, `not json`} {
		if resp, body := do(t, http.MethodPut, faultsURL, bad, ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	if srv.Faults().FailRate != 1 {
		t.Error("invalid PUTs changed the faults")
	}

	if resp, _ := do(t, http.MethodPut, faultsURL, `{"rateLimitRate":1}`, ""); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	if got := complete(); got != http.StatusTooManyRequests {
		t.Errorf("with rateLimitRate 1: status = %d, want 429", got)
	}
	if err := srv.SetFaults(fakeopenai.Faults{}); err != nil {
		t.Fatal(err)
	}
	if got := complete(); got != http.StatusOK {
		t.Errorf("without faults: status = %d, want 200", got)
	}
	if err := srv.SetFaults(fakeopenai.Faults{FailRate: -1}); err == nil {
		t.Error("SetFaults accepted a negative rate")
	}
}

func TestStatsCountOutcomes(t *testing.T) {
	srv, _, url := start(t, fakeopenai.Config{})
	for _, prompt := range []string{"a", "b", "[[fakeopenai:status=500]]", "[[fakeopenai:status=429]]", "[[fakeopenai:status=429]]"} {
		post(t, url, chatBody(prompt))
	}
	post(t, url, "{")

	want := fakeopenai.Stats{Requests: 6, Completed: 2, Failed: 2, RateLimited: 2}
	if got := srv.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	_, body := do(t, http.MethodGet, url+"/_fake/stats", "", "")
	var got fakeopenai.Stats
	if err := json.Unmarshal(body, &got); err != nil || got != want {
		t.Errorf("GET /_fake/stats = %s, want %+v", body, want)
	}
	if !strings.Contains(string(body), `"rateLimited":2`) {
		t.Errorf("GET /_fake/stats = %s, want camelCase keys", body)
	}
}

func TestInvalidRequestsAreRejectedLikeOpenAI(t *testing.T) {
	const ok = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		auth       string
		wantStatus int
		wantCode   string
	}{
		{"bad JSON", "POST", "/v1/chat/completions", `{"model":`, "Bearer k", 400, ""},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, "Bearer k", 400, ""},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, "Bearer k", 400, ""},
		{"message without role", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"content":"hi"}]}`, "Bearer k", 400, ""},
		{"malformed marker", "POST", "/v1/chat/completions", chatBody("[[fakeopenai:fail=429xtwo]]"), "Bearer k", 400, ""},
		{"missing API key", "POST", "/v1/chat/completions", ok, "", 401, "invalid_api_key"},
		{"empty API key", "POST", "/v1/chat/completions", ok, "Bearer ", 401, "invalid_api_key"},
		{"models without API key", "GET", "/v1/models", "", "", 401, "invalid_api_key"},
		{"wrong method", "GET", "/v1/chat/completions", "", "Bearer k", 405, ""},
		{"unknown path", "POST", "/v1/completions/nope", ok, "Bearer k", 404, ""},
	}
	_, _, url := start(t, fakeopenai.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, url+tt.path, tt.body, tt.auth)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			var e struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if e.Error["message"] == "" || e.Error["type"] != "invalid_request_error" {
				t.Errorf("body = %s, want an invalid_request_error", body)
			}
			for _, key := range []string{"param", "code"} {
				if _, ok := e.Error[key]; !ok {
					t.Errorf("body = %s, want a %q key", body, key)
				}
			}
			if code, _ := e.Error["code"].(string); code != tt.wantCode {
				t.Errorf("code = %q, want %q", code, tt.wantCode)
			}
		})
	}
}

func TestGoOpenAISeesBadRequests(t *testing.T) {
	_, client, _ := start(t, fakeopenai.Config{})
	req := chat(jobPrompt)
	req.Model = ""
	_, err := client.CreateChatCompletion(t.Context(), req)
	if apiErr := apiError(t, err); apiErr.HTTPStatusCode != 400 || !strings.Contains(apiErr.Message, "model") {
		t.Errorf("error = %v, want 400 about the model", apiErr)
	}
}

func TestModelsListsConfiguredModel(t *testing.T) {
	tests := []struct {
		model, want string
	}{
		{"", fakeopenai.DefaultModel},
		{"gpt-4o", "gpt-4o"},
	}
	for _, tt := range tests {
		_, client, _ := start(t, fakeopenai.Config{Model: tt.model})
		list, err := client.ListModels(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Models) != 1 || list.Models[0].ID != tt.want {
			t.Errorf("models = %+v, want just %q", list.Models, tt.want)
		}
	}
}

func TestHealthzAnswersOK(t *testing.T) {
	_, _, url := start(t, fakeopenai.Config{FailRate: 1})
	if resp, body := do(t, http.MethodGet, url+"/healthz", "", ""); resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := fakeopenai.New(fakeopenai.Config{FailRate: 1.5}); err == nil {
		t.Error("New accepted a fail rate of 1.5")
	}
}

func TestConcurrentRequestsAreCounted(t *testing.T) {
	srv, client, _ := start(t, fakeopenai.Config{FailRate: 0.3, RateLimitRate: 0.2})
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := chat(jobPrompt)
			if i%2 == 0 {
				req.Stream = true
				s, err := client.CreateChatCompletionStream(t.Context(), req)
				if err == nil {
					for err == nil {
						_, err = s.Recv()
					}
					s.Close()
				}
				return
			}
			_, _ = client.CreateChatCompletion(t.Context(), req)
		})
	}
	wg.Go(func() { // changes faults meanwhile
		for range 10 {
			_ = srv.SetFaults(srv.Faults())
		}
	})
	wg.Wait()
	s := srv.Stats()
	if s.Requests != n || s.Completed+s.Failed+s.RateLimited != n {
		t.Errorf("stats = %+v, want %d requests all accounted for", s, n)
	}
}

func BenchmarkChatCompletion(b *testing.B) {
	srv, err := fakeopenai.New(fakeopenai.Config{})
	if err != nil {
		b.Fatal(err)
	}
	body := chatBody(jobPrompt)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
