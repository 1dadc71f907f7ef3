package fakeopenai

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The subset of the OpenAI chat-completions wire format the server reads and
// writes.

type chatRequest struct {
	Model         string    `json:"model"`
	Messages      []message `json:"messages"`
	Stream        bool      `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
}

// maxTokens is the cap on the answer's tokens, reasoning included; 0 for none.
func (r chatRequest) maxTokens() int {
	switch {
	case r.MaxCompletionTokens != nil:
		return *r.MaxCompletionTokens
	case r.MaxTokens != nil:
		return *r.MaxTokens
	}
	return 0
}

type message struct {
	Role    string  `json:"role"`
	Content content `json:"content"`
}

// content is a message content, sent either as a string or as an array of
// parts of which the text ones are kept.
type content string

func (c *content) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n': // null, as in an assistant message with tool calls
		*c = ""
		return nil
	case '"':
		return json.Unmarshal(b, (*string)(c))
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		var text []byte
		for _, p := range parts {
			if p.Type == "text" {
				if len(text) > 0 {
					text = append(text, '\n')
				}
				text = append(text, p.Text...)
			}
		}
		*c = content(text)
		return nil
	}
	return errors.New("content must be a string or an array of content parts")
}

type completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint"`
	Choices           []choice `json:"choices"`
	Usage             *usage   `json:"usage,omitempty"`
	// PromptFilterResults is Azure's verdict on the prompt.
	PromptFilterResults []promptFilterResult `json:"prompt_filter_results,omitempty"`
}

type promptFilterResult struct {
	PromptIndex          int            `json:"prompt_index"`
	ContentFilterResults map[string]any `json:"content_filter_results"`
}

// choice is a choice of a completion (Message set) or of a stream chunk
// (Delta set).
type choice struct {
	Index        int     `json:"index"`
	Message      *delta  `json:"message,omitempty"`
	Delta        *delta  `json:"delta,omitempty"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
	// ContentFilterResults is Azure's verdict on the answer.
	ContentFilterResults map[string]any `json:"content_filter_results,omitempty"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type usage struct {
	PromptTokens            int                `json:"prompt_tokens"`
	CompletionTokens        int                `json:"completion_tokens"` // reasoning included
	TotalTokens             int                `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens"`
}

type completionDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// apiError is an OpenAI error, written as {"error": {...}}.
type apiError struct {
	status  int
	body    any     // written instead of the fields below when set, as for Azure's own shapes
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func invalidRequest(status int, msg string) *apiError {
	return &apiError{status: status, Message: msg, Type: "invalid_request_error"}
}

// injectedError is the error a fault or marker answers with.
func injectedError(status int) *apiError {
	switch {
	case status == http.StatusTooManyRequests:
		return &apiError{status: status, Type: "requests", Code: ptr("rate_limit_exceeded"),
			Message: "Rate limit reached for requests (injected by fakeopenai). Please retry after the delay in the Retry-After header."}
	case status >= 500:
		return &apiError{status: status, Type: "server_error",
			Message: "The server had an error while processing your request (injected by fakeopenai). Sorry about that!"}
	case status == http.StatusUnauthorized:
		return &apiError{status: status, Type: "invalid_request_error", Code: ptr("invalid_api_key"),
			Message: "Incorrect API key provided (injected by fakeopenai)."}
	}
	return invalidRequest(status, http.StatusText(status)+" (injected by fakeopenai).")
}

func ptr[T any](v T) *T { return &v }

// writeError writes e as {"error": e}, or in vLLM's flat shape when flat.
func writeError(w http.ResponseWriter, e *apiError, flat bool) {
	var body any = e
	if e.body != nil {
		body = e.body
	}
	if flat {
		writeJSON(w, e.status, map[string]any{"object": "error", "message": e.Message,
			"type": http.StatusText(e.status), "param": e.Param, "code": e.status})
		return
	}
	writeJSON(w, e.status, struct {
		Error any `json:"error"`
	}{body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
