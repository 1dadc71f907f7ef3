package fakeopenai

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Profile names the provider whose wire format and refusals a Server reproduces.
type Profile string

// The profiles. Each follows its provider's public API reference; see doc.go.
const (
	// ProfileOpenAI is api.openai.com: bearer key, reasoning models (o1, o3, o4, gpt-5…) refuse
	// max_tokens and a temperature other than 1 and report reasoning tokens, usage in streams
	// on request, x-ratelimit-* headers. The default.
	ProfileOpenAI Profile = "openai"
	// ProfileAzure is Azure OpenAI: POST /openai/deployments/{deployment}/chat/completions
	// ?api-version=…, api-key header, content_filter_results on prompts and choices, the
	// content-filter 400 and Azure's error bodies; reasoning models as ProfileOpenAI.
	ProfileAzure Profile = "azure"
	// ProfileVLLM is vLLM's OpenAI-compatible server: bearer key, any model, no usage in
	// streams (stream_options ignored), flat {"object":"error",…} error bodies.
	ProfileVLLM Profile = "vllm"
	// ProfileOllama is Ollama's /v1 compatibility layer: the key is ignored, any model, no
	// usage in streams.
	ProfileOllama Profile = "ollama"
)

// Profiles lists every profile, the default first.
func Profiles() []Profile { return []Profile{ProfileOpenAI, ProfileAzure, ProfileVLLM, ProfileOllama} }

// Set parses a profile name, as a flag.Value; empty means ProfileOpenAI.
func (p *Profile) Set(s string) error {
	v := Profile(strings.ToLower(strings.TrimSpace(s)))
	if v == "" {
		v = ProfileOpenAI
	}
	for _, known := range Profiles() {
		if v == known {
			*p = v
			return nil
		}
	}
	return fmt.Errorf("unknown profile %q, want one of %v", s, Profiles())
}

func (p Profile) String() string { return string(p) }

// traits are what a profile changes in the server's behaviour.
type traits struct {
	azure          bool // deployment URLs, api-key, content-filter results, Azure error bodies
	bearerAuth     bool // requires Authorization: Bearer
	reasoningRules bool // reasoning models refuse max_tokens and temperature, report reasoning tokens
	streamUsage    bool // honours stream_options.include_usage
	usageDetails   bool // usage has prompt_tokens_details and completion_tokens_details
	flatErrors     bool // errors are {"object":"error","message":…,"code":400}, not {"error":{…}}
	rateLimits     bool // completions carry x-ratelimit-* headers
}

func (p Profile) traits() traits {
	switch p {
	case ProfileAzure:
		return traits{azure: true, reasoningRules: true, streamUsage: true, usageDetails: true, rateLimits: true}
	case ProfileVLLM:
		return traits{bearerAuth: true, flatErrors: true}
	case ProfileOllama:
		return traits{}
	default:
		return traits{bearerAuth: true, reasoningRules: true, streamUsage: true, usageDetails: true, rateLimits: true}
	}
}

// isReasoningModel is OpenAI's rule for models that think before they answer: the o-series
// (o1, o3-mini, o4-mini…) and gpt-5 onwards, also behind a "provider/" prefix.
func isReasoningModel(model string) bool {
	m := strings.ToLower(model[strings.LastIndex(model, "/")+1:])
	if len(m) >= 2 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9' {
		return true
	}
	for _, family := range []string{"gpt-5", "gpt-6"} {
		if strings.HasPrefix(m, family) {
			return true
		}
	}
	return false
}

// checkParams refuses what the provider refuses of a request's parameters: reasoning models
// take max_completion_tokens, not max_tokens, and only the default temperature.
func (t traits) checkParams(req chatRequest) *apiError {
	if !t.reasoningRules || !isReasoningModel(req.Model) {
		return nil
	}
	if req.MaxTokens != nil {
		e := invalidRequest(http.StatusBadRequest,
			"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")
		e.Param, e.Code = ptr("max_tokens"), ptr("unsupported_parameter")
		return e
	}
	if req.Temperature != nil && *req.Temperature != 1 {
		e := invalidRequest(http.StatusBadRequest, fmt.Sprintf(
			"Unsupported value: 'temperature' does not support %v with this model. Only the default (1) value is supported.", *req.Temperature))
		e.Param, e.Code = ptr("temperature"), ptr("unsupported_value")
		return e
	}
	return nil
}

// authorize checks the credentials the profile asks for: a bearer token (any), Azure's
// api-key header (or a bearer token, as Entra ID sends), or none.
func (t traits) authorize(r *http.Request) *apiError {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	bearer := len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) && strings.TrimSpace(h[len(prefix):]) != ""
	switch {
	case t.azure && strings.TrimSpace(r.Header.Get("api-key")) == "" && !bearer:
		return azureError(http.StatusUnauthorized, "Access denied due to invalid subscription key or wrong API endpoint. "+
			"Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.")
	case t.bearerAuth && !bearer:
		return &apiError{
			status: http.StatusUnauthorized, Type: "invalid_request_error", Code: ptr("invalid_api_key"),
			Message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
		}
	}
	return nil
}

// azureError is Azure's own error body: {"error":{"code":"401","message":…}}.
func azureError(status int, msg string) *apiError {
	return &apiError{status: status, Message: msg,
		body: map[string]any{"code": strconv.Itoa(status), "message": msg}}
}

// contentFilterError is the 400 a provider answers when its content filter refuses the prompt:
// Azure's content_filter error with the filter's verdict, elsewhere OpenAI's invalid_prompt.
func (t traits) contentFilterError() *apiError {
	if !t.azure {
		e := invalidRequest(http.StatusBadRequest, "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "+
			"Please try again with a different prompt (refused by fakeopenai).")
		e.Code = ptr("invalid_prompt")
		return e
	}
	msg := "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. " +
		"Please modify your prompt and retry. To learn more about our content filtering policies please read our " +
		"documentation: https://go.microsoft.com/fwlink/?linkid=2198766 (refused by fakeopenai)"
	return &apiError{status: http.StatusBadRequest, Message: msg, body: map[string]any{
		"message": msg, "type": nil, "param": "prompt", "code": "content_filter", "status": http.StatusBadRequest,
		"innererror": map[string]any{"code": "ResponsibleAIPolicyViolation", "content_filter_result": filterVerdict(true)},
	}}
}

// filterVerdict is Azure's content_filter_results: every category safe, or hate filtered.
func filterVerdict(filtered bool) map[string]any {
	hate := map[string]any{"filtered": false, "severity": "safe"}
	if filtered {
		hate = map[string]any{"filtered": true, "severity": "high"}
	}
	safe := func() map[string]any { return map[string]any{"filtered": false, "severity": "safe"} }
	return map[string]any{"hate": hate, "self_harm": safe(), "sexual": safe(), "violence": safe()}
}
