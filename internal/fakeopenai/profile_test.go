package fakeopenai_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/fakeopenai"
)

// serve starts a Server of profile and returns its base URL (no /v1).
func serve(t *testing.T, profile fakeopenai.Profile) string {
	t.Helper()
	srv, err := fakeopenai.New(fakeopenai.Config{Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL
}

// body is a chat-completion request for model with extra fields.
func body(model, prompt string, extra map[string]any) string {
	m := map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": prompt}}}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

var (
	bearer = http.Header{"Authorization": {"Bearer sk-test"}}
	apiKey = http.Header{"Api-Key": {"azure-key"}}
)

// decoded is a response body read as JSON.
func decoded(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body %s: %v", raw, err)
	}
	return m
}

// errorOf is the "error" object of a body.
func errorOf(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	e, ok := decoded(t, raw)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", raw)
	}
	return e
}

func TestProfileSet(t *testing.T) {
	var p fakeopenai.Profile
	for _, tt := range []struct {
		in   string
		want fakeopenai.Profile
	}{{"", "openai"}, {"Azure", "azure"}, {"\tvllm ", "vllm"}, {"ollama", "ollama"}} {
		if err := p.Set(tt.in); err != nil || p != tt.want {
			t.Errorf("Set(%q) = %v, %q; want %q", tt.in, err, p, tt.want)
		}
	}
	if err := p.Set("bedrock"); err == nil || !strings.Contains(err.Error(), "unknown profile") {
		t.Errorf("Set(bedrock) = %v", err)
	}
	if _, err := fakeopenai.New(fakeopenai.Config{Profile: "bedrock"}); err == nil {
		t.Error("New accepted an unknown profile")
	}
}

// TestReasoningModelsRefuseChatParameters: as OpenAI and Azure, reasoning models refuse
// max_tokens and a temperature other than 1 with a 400, and report reasoning tokens;
// self-hosted profiles take any parameter.
func TestReasoningModelsRefuseChatParameters(t *testing.T) {
	t.Parallel()
	openaiURL, vllmURL := serve(t, fakeopenai.ProfileOpenAI), serve(t, fakeopenai.ProfileVLLM)
	tests := []struct {
		name, url, model      string
		extra                 map[string]any
		wantStatus            int
		wantParam, wantCode   string
		wantReasoningInTokens bool
	}{
		{"max_tokens", openaiURL, "o3-mini", map[string]any{"max_tokens": 500}, 400, "max_tokens", "unsupported_parameter", false},
		{"prefixed model", openaiURL, "openai/gpt-5-mini", map[string]any{"max_tokens": 500}, 400, "max_tokens", "unsupported_parameter", false},
		{"temperature", openaiURL, "o4-mini", map[string]any{"temperature": 0.7}, 400, "temperature", "unsupported_value", false},
		{"default temperature", openaiURL, "o4-mini", map[string]any{"temperature": 1}, 200, "", "", true},
		{"max_completion_tokens", openaiURL, "gpt-5", map[string]any{"max_completion_tokens": 4000}, 200, "", "", true},
		{"chat model", openaiURL, "gpt-4o-mini", map[string]any{"max_tokens": 500, "temperature": 0.7}, 200, "", "", false},
		{"self-hosted", vllmURL, "o3-mini", map[string]any{"max_tokens": 500}, 200, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, raw := doWith(t, http.MethodPost, tt.url+"/v1/chat/completions", body(tt.model, jobPrompt, tt.extra), bearer)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			if tt.wantStatus != 200 {
				e := errorOf(t, raw)
				if e["param"] != tt.wantParam || e["code"] != tt.wantCode || e["type"] != "invalid_request_error" {
					t.Fatalf("error %v", e)
				}
				return
			}
			u := decoded(t, raw)["usage"].(map[string]any)
			details, _ := u["completion_tokens_details"].(map[string]any)
			if reasoning, _ := details["reasoning_tokens"].(float64); (reasoning > 0) != tt.wantReasoningInTokens {
				t.Fatalf("usage %v", u)
			}
		})
	}
}

// TestTokenCapCutsTheAnswer: an answer longer than max_tokens stops there with
// finish_reason length; a reasoning model's thinking counts against max_completion_tokens.
func TestTokenCapCutsTheAnswer(t *testing.T) {
	t.Parallel()
	url := serve(t, fakeopenai.ProfileOpenAI)
	for _, tt := range []struct {
		model string
		extra map[string]any
		empty bool
	}{
		{"gpt-4o-mini", map[string]any{"max_tokens": 20}, false},
		{"o3-mini", map[string]any{"max_completion_tokens": 40}, true},
	} {
		_, raw := doWith(t, http.MethodPost, url+"/v1/chat/completions", body(tt.model, jobPrompt, tt.extra), bearer)
		var c struct {
			Choices []struct {
				Message      struct{ Content string }
				FinishReason string `json:"finish_reason"`
			}
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		got := c.Choices[0]
		if got.FinishReason != "length" || len(got.Message.Content) > 80 || (got.Message.Content == "") != tt.empty {
			t.Errorf("%s: %+v", tt.model, got)
		}
	}
}

// TestAzureProfile: Azure's deployment URL, api-version and api-key, its content-filter
// verdicts and refusal, and its own error bodies.
func TestAzureProfile(t *testing.T) {
	t.Parallel()
	base := serve(t, fakeopenai.ProfileAzure)
	chatURL := base + "/openai/deployments/letters/chat/completions?api-version=2024-10-21"
	post := func(url, prompt string, h http.Header) (*http.Response, []byte) {
		return doWith(t, http.MethodPost, url, `{"messages":[{"role":"user","content":`+quote(prompt)+`}]}`, h)
	}

	resp, raw := post(chatURL, jobPrompt, apiKey)
	c := decoded(t, raw)
	choice := c["choices"].([]any)[0].(map[string]any)
	if resp.StatusCode != 200 || c["model"] != "letters" || c["prompt_filter_results"] == nil || choice["content_filter_results"] == nil {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	if resp.Header.Get("x-ratelimit-remaining-requests") == "" || resp.Header.Get("x-ratelimit-limit-requests") != "" {
		t.Errorf("rate-limit headers %v", resp.Header)
	}
	if resp, _ := post(chatURL, jobPrompt, bearer); resp.StatusCode != 200 {
		t.Errorf("an Entra ID bearer token got %d", resp.StatusCode)
	}

	for _, tt := range []struct {
		name, url, prompt string
		header            http.Header
		status            int
		code              string
	}{
		{"no key", chatURL, jobPrompt, http.Header{}, 401, "401"},
		{"no api-version", strings.Split(chatURL, "?")[0], jobPrompt, apiKey, 404, "404"},
		{"OpenAI's path", base + "/v1/chat/completions", jobPrompt, apiKey, 404, "404"},
		{"prompt filtered", chatURL, jobPrompt + "[[fakeopenai:filter=prompt]]", apiKey, 400, "content_filter"},
		{"rate limited", chatURL, jobPrompt + "[[fakeopenai:status=429]]", apiKey, 429, "429"},
	} {
		resp, raw := post(tt.url, tt.prompt, tt.header)
		if e := errorOf(t, raw); resp.StatusCode != tt.status || e["code"] != tt.code {
			t.Errorf("%s: status %d, body %s", tt.name, resp.StatusCode, raw)
		}
	}
	_, raw = post(chatURL, jobPrompt+"[[fakeopenai:filter=prompt]]", apiKey)
	if inner, _ := errorOf(t, raw)["innererror"].(map[string]any); inner["code"] != "ResponsibleAIPolicyViolation" || inner["content_filter_result"] == nil {
		t.Errorf("content-filter error %s", raw)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestAzureStreamStartsWithThePromptVerdict: Azure's first chunk has no choices and the
// prompt's filter results; the last choice says whether the answer was filtered.
func TestAzureStreamStartsWithThePromptVerdict(t *testing.T) {
	t.Parallel()
	base := serve(t, fakeopenai.ProfileAzure)
	_, raw := doWith(t, http.MethodPost, base+"/openai/deployments/d/chat/completions?api-version=2024-10-21",
		body("gpt-4o", jobPrompt+"[[fakeopenai:finish=content_filter]]", map[string]any{"stream": true}), apiKey)
	events := dataEvents(t, raw)
	first, last := events[0], events[len(events)-1]
	if first["prompt_filter_results"] == nil || len(first["choices"].([]any)) != 0 {
		t.Errorf("first chunk %v", first)
	}
	choice := last["choices"].([]any)[0].(map[string]any)
	hate := choice["content_filter_results"].(map[string]any)["hate"].(map[string]any)
	if choice["finish_reason"] != "content_filter" || hate["filtered"] != true {
		t.Errorf("last chunk %v", last)
	}
}

// dataEvents are the JSON events of a server-sent stream, [DONE] left out.
func dataEvents(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var events []map[string]any
	for line := range strings.SplitSeq(string(raw), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if ok && data != "[DONE]" {
			events = append(events, decoded(t, []byte(data)))
		}
	}
	if len(events) == 0 {
		t.Fatalf("no events in %s", raw)
	}
	return events
}

// TestSelfHostedProfiles: vLLM and Ollama report no usage in streams even when asked; vLLM
// wants a bearer key and answers errors flat, Ollama ignores the key; neither sends
// rate-limit headers.
func TestSelfHostedProfiles(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		profile  fakeopenai.Profile
		noKey    int
		flatErrs bool
	}{
		{fakeopenai.ProfileVLLM, 401, true},
		{fakeopenai.ProfileOllama, 200, false},
	} {
		t.Run(string(tt.profile), func(t *testing.T) {
			t.Parallel()
			url := serve(t, tt.profile) + "/v1/chat/completions"
			resp, raw := doWith(t, http.MethodPost, url,
				body("llama3.1", jobPrompt, map[string]any{"stream": true, "stream_options": map[string]bool{"include_usage": true}}), bearer)
			for _, e := range dataEvents(t, raw) {
				if e["usage"] != nil {
					t.Fatalf("usage in a stream: %v", e)
				}
			}
			if resp.Header.Get("x-ratelimit-remaining-requests") != "" {
				t.Errorf("rate-limit headers %v", resp.Header)
			}
			if resp, _ := doWith(t, http.MethodPost, url, body("llama3.1", jobPrompt, nil), http.Header{}); resp.StatusCode != tt.noKey {
				t.Errorf("without a key: %d, want %d", resp.StatusCode, tt.noKey)
			}
			_, raw = doWith(t, http.MethodPost, url, body("llama3.1", jobPrompt+"[[fakeopenai:status=400]]", nil), bearer)
			if m := decoded(t, raw); (m["object"] == "error" && m["code"] == float64(400)) != tt.flatErrs {
				t.Errorf("error body %s", raw)
			}
		})
	}
}

// TestAnswerMarkers: finish, answer and filter markers shape the answer on the OpenAI profile.
func TestAnswerMarkers(t *testing.T) {
	t.Parallel()
	url := serve(t, fakeopenai.ProfileOpenAI) + "/v1/chat/completions"
	for _, tt := range []struct {
		marker, finish string
		content        func(string) bool
	}{
		{"[[fakeopenai:finish=length]]", "length", func(s string) bool { return len(s) > 100 }},
		{"[[fakeopenai:finish=content_filter]]", "content_filter", func(s string) bool { return s == "" }},
		{"[[fakeopenai:answer=empty]]", "stop", func(s string) bool { return s == "" }},
		{"[[fakeopenai:answer=blank]]", "stop", func(s string) bool { return s != "" && strings.TrimSpace(s) == "" }},
	} {
		_, raw := doWith(t, http.MethodPost, url, body("gpt-4o-mini", jobPrompt+tt.marker, nil), bearer)
		choice := decoded(t, raw)["choices"].([]any)[0].(map[string]any)
		content, _ := choice["message"].(map[string]any)["content"].(string)
		if choice["finish_reason"] != tt.finish || !tt.content(content) {
			t.Errorf("%s: finish %v, content %q", tt.marker, choice["finish_reason"], content)
		}
	}
	resp, raw := doWith(t, http.MethodPost, url, body("gpt-4o-mini", jobPrompt+"[[fakeopenai:filter=prompt]]", nil), bearer)
	if e := errorOf(t, raw); resp.StatusCode != 400 || e["code"] != "invalid_prompt" {
		t.Errorf("filtered prompt: %d %s", resp.StatusCode, raw)
	}
	if resp.Header.Get("x-ratelimit-limit-requests") != "" {
		t.Errorf("a refused request counted against the rate limit: %v", resp.Header)
	}
}
