package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/fakeopenai"
	"github.com/careerops/jobs/internal/testkit"
)

const (
	system = "You write cover letters."
	prompt = "Job description:\nSenior Backend Engineer at Acme Robotics\nGo, PostgreSQL, Kubernetes.\n\n" +
		"CV:\nJane Doe\nBackend engineer with 7 years of experience in Go at Stripe."
)

// provider is one kind of endpoint as the tests drive it: a fakeopenai profile and the
// models its users run.
type provider struct {
	profile   fakeopenai.Profile
	apiType   APIType
	chat      string // a chat model
	reasoning string // a reasoning model, "" if the provider serves none
	// streamUsage: the server reports usage in streams; else the client estimates it.
	streamUsage bool
	rateLimits  bool // the server sends x-ratelimit-* headers
	// contentFilter: the provider filters prompts (OpenAI's invalid_prompt, Azure's
	// content_filter); self-hosted servers have no filter of their own.
	contentFilter bool
}

func providers() []provider {
	return []provider{
		{profile: fakeopenai.ProfileOpenAI, apiType: APITypeOpenAI, chat: "gpt-4o-mini", reasoning: "o3-mini", streamUsage: true, rateLimits: true, contentFilter: true},
		{profile: fakeopenai.ProfileAzure, apiType: APITypeAzure, chat: "gpt-4o", reasoning: "o4-mini", streamUsage: true, rateLimits: true, contentFilter: true},
		{profile: fakeopenai.ProfileVLLM, apiType: APITypeOpenAI, chat: "meta-llama/Llama-3.1-8B-Instruct"},
		{profile: fakeopenai.ProfileOllama, apiType: APITypeOpenAI, chat: "llama3.1:8b"},
	}
}

// bundle is what a test of a provider holds: the fake, the requests it got, a config.
type bundle struct {
	fake     *fakeopenai.Server
	cfg      Config
	requests *requestLog
}

// setup serves a fakeopenai of p's profile and returns a Config for p's chat model on it;
// the requests the client sends are logged.
func setup(t *testing.T, p provider) (*Client, *bundle) {
	t.Helper()
	fake, url := testkit.StartFakeOpenAI(t, fakeopenai.Config{Profile: p.profile, Seed: 1})
	b := &bundle{fake: fake, requests: &requestLog{next: http.DefaultTransport}}
	b.cfg = Config{APIType: p.apiType, BaseURL: url + "/v1", APIKey: "sk-test", Model: p.chat, Transport: b.requests}
	if p.apiType == APITypeAzure {
		b.cfg.BaseURL = url
	}
	return New(b.cfg), b
}

// with returns a Client of the bundle's config changed by f.
func (b *bundle) with(f func(*Config)) *Client {
	cfg := b.cfg
	f(&cfg)
	return New(cfg)
}

// requestLog is a transport that keeps the requests it sends.
type requestLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []sentRequest
}

type sentRequest struct {
	method, url string
	header      http.Header
	body        map[string]any
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, sentRequest{r.Method, r.URL.String(), r.Header.Clone(), body})
	l.mu.Unlock()
	return l.next.RoundTrip(r)
}

func (l *requestLog) last(t *testing.T) sentRequest {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) == 0 {
		t.Fatal("no request was sent")
	}
	return l.reqs[len(l.reqs)-1]
}

// call asks c for a letter, streamed or not; a stream's pieces must add up to the text.
func call(t *testing.T, c *Client, user string, streamed bool) (Completion, error) {
	t.Helper()
	if !streamed {
		return c.Complete(t.Context(), system, user)
	}
	var pieces strings.Builder
	out, err := c.Stream(t.Context(), system, user, func(s string) { pieces.WriteString(s) })
	if err == nil && strings.TrimSpace(pieces.String()) != out.Text {
		t.Errorf("the streamed pieces %q do not make the text %q", pieces.String(), out.Text)
	}
	return out, err
}

// eachProvider runs f in a parallel subtest, named after the profile, for each provider
// keep accepts (nil: all).
func eachProvider(t *testing.T, keep func(provider) bool, f func(t *testing.T, p provider)) {
	t.Helper()
	for _, p := range providers() {
		if keep == nil || keep(p) {
			t.Run(string(p.profile), func(t *testing.T) {
				t.Parallel()
				f(t, p)
			})
		}
	}
}

// eachWay is eachProvider with each provider asked each way, in parallel subtests
// "profile/complete" and "profile/stream".
func eachWay(t *testing.T, keep func(provider) bool, f func(t *testing.T, p provider, streamed bool)) {
	t.Helper()
	eachProvider(t, keep, func(t *testing.T, p provider) { //nolint:thelper // a subtest, not a helper
		for _, way := range []string{"complete", "stream"} {
			t.Run(way, func(t *testing.T) {
				t.Parallel()
				f(t, p, way == "stream")
			})
		}
	})
}

// failingCall asks p's chat model for a letter with the fakeopenai marker [[fakeopenai:marker]],
// which must fail with an *Error.
func failingCall(t *testing.T, p provider, streamed bool, marker string) *Error {
	t.Helper()
	c, _ := setup(t, p)
	_, err := call(t, c, prompt+"\n[[fakeopenai:"+marker+"]]", streamed)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	return e
}

// letter is the letter p's chat model writes for prompt.
func letter(t *testing.T, p provider, streamed bool) Completion {
	t.Helper()
	c, _ := setup(t, p)
	out, err := call(t, c, prompt, streamed)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func servesReasoningModels(p provider) bool { return p.reasoning != "" }

// TestProviderLetters: every provider writes a letter, streamed or not, and the usage says
// where its counts come from: reported, or estimated with a tokenizer when a self-hosted
// server reports none in streams.
func TestProviderLetters(t *testing.T) {
	t.Parallel()
	eachWay(t, nil, func(t *testing.T, p provider, streamed bool) { //nolint:thelper // a subtest, not a helper
		out := letter(t, p, streamed)
		if !strings.Contains(out.Text, "Acme Robotics") || out.FinishReason != "stop" || out.ID == "" || out.Model == "" {
			t.Fatalf("completion = %+v", out)
		}
		wantSource := UsageReported
		if streamed && !p.streamUsage {
			wantSource = UsageEstimated
		}
		if out.UsageSource != wantSource || out.PromptTokens < 20 || out.CompletionTokens < 50 {
			t.Fatalf("usage = %d+%d %s, want plausible counts %s", out.PromptTokens, out.CompletionTokens, out.UsageSource, wantSource)
		}
	})
}

// TestEstimatedUsageMatchesReported: where a server reports no usage the tokenizer's count is
// close to what it reports when asked without streaming (the fake counts ~4 bytes a token).
func TestEstimatedUsageMatchesReported(t *testing.T) {
	t.Parallel()
	eachProvider(t, func(p provider) bool { return !p.streamUsage }, func(t *testing.T, p provider) { //nolint:thelper // a subtest, not a helper
		c, _ := setup(t, p)
		reported, err := call(t, c, prompt, false)
		if err != nil {
			t.Fatal(err)
		}
		estimated, err := call(t, c, prompt, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range [][2]int{{reported.PromptTokens, estimated.PromptTokens}, {reported.CompletionTokens, estimated.CompletionTokens}} {
			if r, e := float64(pair[0]), float64(pair[1]); e < 0.6*r || e > 1.4*r {
				t.Errorf("estimated %v tokens where %v were reported", e, r)
			}
		}
	})
}

// TestProviderReasoningModels: reasoning models get max_completion_tokens and no max_tokens
// or temperature (the fake refuses them as OpenAI and Azure do), decided from the name or set
// explicitly; their reasoning tokens are counted.
func TestProviderReasoningModels(t *testing.T) {
	t.Parallel()
	eachWay(t, servesReasoningModels, func(t *testing.T, p provider, streamed bool) { //nolint:thelper // a subtest, not a helper
		_, b := setup(t, p)
		c := b.with(func(cfg *Config) { cfg.Model = p.reasoning })
		out, err := call(t, c, prompt, streamed)
		if err != nil {
			t.Fatal(err)
		}
		if out.ReasoningTokens == 0 || out.CompletionTokens <= out.ReasoningTokens || out.UsageSource != UsageReported {
			t.Fatalf("usage = %+v, want reasoning tokens within the completion tokens", out)
		}
		body := b.requests.last(t).body
		if body["max_completion_tokens"] != float64(DefaultReasoningMaxTokens) || body["max_tokens"] != nil || body["temperature"] != nil {
			t.Fatalf("request body %v", body)
		}
	})
}

// TestModelKind: the kind follows the name unless set; an explicit reasoning kind serves a
// deployment whose name says nothing.
func TestModelKind(t *testing.T) {
	t.Parallel()
	eachProvider(t, nil, func(t *testing.T, p provider) { //nolint:thelper // a subtest, not a helper
		_, b := setup(t, p)
		c := b.with(func(cfg *Config) { cfg.Model, cfg.ModelKind, cfg.MaxTokens = "letters-prod", ModelKindReasoning, 3000 })
		if _, err := c.Complete(t.Context(), system, prompt); err != nil {
			t.Fatal(err)
		}
		if body := b.requests.last(t).body; body["max_completion_tokens"] != float64(3000) || body["max_tokens"] != nil {
			t.Fatalf("request body %v", body)
		}
	})
}

// TestClientRejectionIsPermanent: a request the client library refuses to send (go-openai
// refuses max_tokens for o-series models, as a chat kind asks) fails at once as permanent,
// not as a temporary error that burns every attempt.
func TestClientRejectionIsPermanent(t *testing.T) {
	t.Parallel()
	eachWay(t, servesReasoningModels, func(t *testing.T, p provider, streamed bool) { //nolint:thelper // a subtest, not a helper
		_, b := setup(t, p)
		c := b.with(func(cfg *Config) { cfg.Model, cfg.ModelKind = p.reasoning, ModelKindChat })
		_, err := call(t, c, prompt, streamed)
		var e *Error
		if !errors.As(err, &e) || e.Temporary || e.Reason != ReasonClientRejected || !strings.Contains(e.Error(), "MaxCompletionTokens") {
			t.Fatalf("err = %#v, want a permanent %s error", err, ReasonClientRejected)
		}
		if n := b.fake.Stats().Requests; n != 0 {
			t.Fatalf("the fake got %d requests", n)
		}
	})
}

// TestAnswersThatAreNotALetter: an answer cut at the token cap, withheld by a content filter,
// empty or blank is a permanent error with its reason, on every provider, streamed or not.
func TestAnswersThatAreNotALetter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		marker, reason, says string
	}{
		{"finish=length", ReasonTruncated, "cap of 1024 tokens"},
		{"finish=content_filter", ReasonContentFilter, "content filter withheld the answer"},
		{"answer=empty", ReasonEmptyAnswer, "empty answer"},
		{"answer=blank", ReasonEmptyAnswer, "empty answer"},
		{"filter=prompt", ReasonContentFilter, "content filter refused the prompt"},
	}
	eachWay(t, nil, func(t *testing.T, p provider, streamed bool) { //nolint:thelper // a subtest, not a helper
		for _, tc := range cases {
			t.Run(tc.marker, func(t *testing.T) {
				e := failingCall(t, p, streamed, tc.marker)
				if tc.marker == "filter=prompt" && !p.contentFilter {
					tc.reason, tc.says = e.Reason, "400" // the fake refuses in the shape of the profile
				}
				if e.Temporary || e.Reason != tc.reason || !strings.Contains(e.Error(), tc.says) {
					t.Fatalf("err = %v, want a permanent %s error saying %q", e, tc.reason, tc.says)
				}
			})
		}
	})
}

// TestReasoningModelThatThinksPastTheCap: a reasoning model that spends its whole cap
// thinking answers nothing with finish_reason length: truncated, saying so.
func TestReasoningModelThatThinksPastTheCap(t *testing.T) {
	t.Parallel()
	eachProvider(t, servesReasoningModels, func(t *testing.T, p provider) { //nolint:thelper // a subtest, not a helper
		_, b := setup(t, p)
		c := b.with(func(cfg *Config) { cfg.Model, cfg.MaxTokens = p.reasoning, 50 })
		out, err := c.Complete(t.Context(), system, prompt)
		var e *Error
		if !errors.As(err, &e) || e.Reason != ReasonTruncated || !strings.Contains(err.Error(), "spent reasoning") {
			t.Fatalf("err = %v, want %s with the reasoning tokens", err, ReasonTruncated)
		}
		if out.ReasoningTokens == 0 || out.UsageSource != UsageReported {
			t.Fatalf("the completion does not say what the call cost: %+v", out)
		}
	})
}

// TestProviderErrors: each provider's error bodies sort into temporary and permanent, with
// the server's message and its Retry-After.
func TestProviderErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status     int
		temporary  bool
		retryAfter time.Duration
	}{
		{400, false, 0}, {401, false, 0}, {404, false, 0}, {429, true, time.Second}, {500, true, 0}, {503, true, 0},
	}
	eachWay(t, nil, func(t *testing.T, p provider, streamed bool) { //nolint:thelper // a subtest, not a helper
		for _, tc := range cases {
			t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
				e := failingCall(t, p, streamed, "status="+strconv.Itoa(tc.status))
				if e.StatusCode != tc.status || e.Temporary != tc.temporary || e.RetryAfter != tc.retryAfter {
					t.Fatalf("err = %#v, want status %d temporary %v retry after %v", e, tc.status, tc.temporary, tc.retryAfter)
				}
				if e.Reason != "" || !strings.Contains(e.Error(), "fakeopenai") {
					t.Fatalf("err = %v, want the server's message and no reason", e)
				}
			})
		}
	})
}

// TestProviderRateLimitHeaders: OpenAI's x-ratelimit-* headers (Azure's remaining counts) are
// read into the Completion; self-hosted servers send none.
func TestProviderRateLimitHeaders(t *testing.T) {
	t.Parallel()
	eachWay(t, nil, func(t *testing.T, p provider, streamed bool) { //nolint:thelper // a subtest, not a helper
		rl := letter(t, p, streamed).RateLimit
		switch {
		case !p.rateLimits && rl != RateLimit{}:
			t.Fatalf("rate limit %+v from a server that sends none", rl)
		case p.rateLimits && (!rl.Reported || rl.RemainingRequests <= 0 || rl.RemainingTokens <= 0):
			t.Fatalf("rate limit %+v, want the remaining budget", rl)
		case p.profile == fakeopenai.ProfileOpenAI && (rl.LimitRequests <= rl.RemainingRequests || rl.ResetRequests <= 0):
			t.Fatalf("rate limit %+v, want limits and resets", rl)
		}
	})
}

// TestAzureWire: Azure is called at its deployment URL with the api-version and the api-key
// header, never a bearer token.
func TestAzureWire(t *testing.T) {
	t.Parallel()
	p := providers()[1]
	_, b := setup(t, p)
	c := b.with(func(cfg *Config) { cfg.Deployment, cfg.APIVersion = "letters-eu", "2025-04-01-preview" })
	if _, err := c.Complete(t.Context(), system, prompt); err != nil {
		t.Fatal(err)
	}
	r := b.requests.last(t)
	if !strings.HasSuffix(r.url, "/openai/deployments/letters-eu/chat/completions?api-version=2025-04-01-preview") {
		t.Errorf("URL %s", r.url)
	}
	if r.header.Get("api-key") != "sk-test" || r.header.Get("Authorization") != "" {
		t.Errorf("headers %v", r.header)
	}
	if _, err := New(b.cfg).Complete(t.Context(), system, prompt); err != nil {
		t.Fatal(err)
	}
	if r := b.requests.last(t); !strings.HasSuffix(r.url, "/openai/deployments/gpt-4o/chat/completions?api-version="+DefaultAzureAPIVersion) {
		t.Errorf("URL %s, want the model as deployment and the default api-version", r.url)
	}
}

// TestCallerCancellationIsNotAnLLMError: shutdown is the caller's, not the API's.
func TestCallerCancellationIsNotAnLLMError(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, providers()[0])
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Complete(ctx, system, prompt); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
