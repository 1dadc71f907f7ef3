package fakeopenai

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/careerops/jobs/internal/pause"
)

const (
	maxRequestBody = 8 << 20
	wordsPerChunk  = 3
)

// chatCompletions serves POST /v1/chat/completions, or Azure's
// POST /openai/deployments/{deployment}/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	id := s.requests.Add(1)
	req, d, e := s.readChatRequest(w, r)
	if e != nil {
		s.reject(w, e)
		return
	}
	prompt, promptChars := hashPrompt(req.Messages)
	if d.filter != "" { // refused before it counts against the limits
		s.reject(w, s.traits.contentFilterError())
		return
	}
	if e := s.admit(w, req, promptChars); e != nil {
		s.reject(w, e)
		return
	}

	// A stream starts after a quarter of the latency and spreads the rest
	// over its chunks.
	latency := d.latency
	if !d.hasLatency {
		latency = s.Faults().Latency
	}
	wait := latency
	if req.Stream {
		wait = latency / 4
	}
	if pause.For(r.Context(), wait) != nil {
		s.canceled.Add(1)
		return
	}

	if status := s.fault(d, prompt); status != 0 {
		s.reject(w, s.injectedError(status))
		return
	}
	a := s.answer(req, d, prompt, promptChars)
	c := completion{
		ID:                "chatcmpl-fake" + strconv.FormatInt(id, 10),
		Created:           time.Now().Unix(),
		Model:             req.Model,
		SystemFingerprint: "fp_fakeopenai",
	}
	if s.traits.azure {
		c.PromptFilterResults = []promptFilterResult{{ContentFilterResults: filterVerdict(false)}}
	}
	if !req.Stream {
		s.writeCompletion(w, c, a)
		return
	}
	var streamUsage *usage
	if s.traits.streamUsage && req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		streamUsage = &a.usage
	}
	if stream(r.Context(), w, c, a, latency-wait, streamUsage) {
		s.completed.Add(1)
	} else {
		s.canceled.Add(1)
	}
}

// readChatRequest checks a request's URL and credentials, reads its body and its markers.
func (s *Server) readChatRequest(w http.ResponseWriter, r *http.Request) (chatRequest, directives, *apiError) {
	if s.traits.azure && r.URL.Query().Get("api-version") == "" {
		return chatRequest{}, directives{}, azureError(http.StatusNotFound, "Resource not found")
	}
	if e := s.traits.authorize(r); e != nil {
		return chatRequest{}, directives{}, e
	}
	req, e := decodeChatRequest(w, r, r.PathValue("deployment"))
	if e == nil {
		e = s.traits.checkParams(req)
	}
	if e != nil {
		return req, directives{}, e
	}
	d, err := parseDirectives(req.Messages)
	if err != nil {
		return req, d, invalidRequest(http.StatusBadRequest, err.Error())
	}
	return req, d, nil
}

// writeCompletion answers with the whole completion at once. A filtered answer has no
// content, as Azure's.
func (s *Server) writeCompletion(w http.ResponseWriter, c completion, a answer) {
	if a.finish == finishContentFilter {
		a.text = ""
	}
	c.Object = "chat.completion"
	ch := choice{Message: &delta{Role: "assistant", Content: &a.text}, FinishReason: &a.finish}
	if c.PromptFilterResults != nil {
		ch.ContentFilterResults = filterVerdict(a.finish == finishContentFilter)
	}
	c.Choices, c.Usage = []choice{ch}, &a.usage
	writeJSON(w, http.StatusOK, c)
	s.completed.Add(1)
}

// answer is what the model says, why it stopped and what it cost.
type answer struct {
	text, finish string
	usage        usage
}

// answer writes the letter, shaped by the markers and cut at the request's token cap.
// Reasoning models think first: their reasoning tokens count in completion_tokens and
// against the cap, so a small cap leaves them with nothing to say.
func (s *Server) answer(req chatRequest, d directives, prompt uint64, promptChars int) answer {
	a := answer{text: composeLetter(req.Messages, prompt), finish: finishStop}
	reasoning := 0
	if s.traits.reasoningRules && isReasoningModel(req.Model) {
		reasoning = 64 + int(prompt%4)*32
	}
	switch {
	case d.answer == "empty":
		a.text = ""
	case d.answer == "blank":
		a.text = " \n\n \t\n"
	case d.finish != "":
		a.text, a.finish = cutWords(a.text, len(a.text)/3), d.finish
	}
	if limit := req.maxTokens(); limit > 0 && reasoning+approxTokens(utf8.RuneCountInString(a.text)) > limit {
		a.text, a.finish = cutWords(a.text, max(0, limit-reasoning)*4), finishLength
	}
	a.usage = usage{
		PromptTokens:     approxTokens(promptChars),
		CompletionTokens: reasoning + approxTokens(utf8.RuneCountInString(a.text)),
	}
	a.usage.TotalTokens = a.usage.PromptTokens + a.usage.CompletionTokens
	if s.traits.usageDetails {
		a.usage.PromptTokensDetails = &promptDetails{}
		a.usage.CompletionTokensDetails = &completionDetails{ReasoningTokens: reasoning}
	}
	return a
}

// cutWords returns s cut to at most n bytes, at the last space before that.
func cutWords(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if i := strings.LastIndexByte(s[:n], ' '); i > 0 {
		return s[:i]
	}
	return ""
}

// injectedError is the error a fault or marker answers with, in the profile's shape.
func (s *Server) injectedError(status int) *apiError {
	if s.traits.azure && status == http.StatusTooManyRequests {
		return azureError(status, "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "+
			"2024-10-21 have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after "+
			s.retryAfter+" seconds (injected by fakeopenai).")
	}
	return injectedError(status)
}

// admit counts the request against the organisation's limits where the provider has them,
// setting the x-ratelimit-* headers; over a limit it returns the 429 to answer, in the
// profile's shape.
func (s *Server) admit(w http.ResponseWriter, req chatRequest, promptChars int) *apiError {
	if !s.traits.rateLimits {
		return nil
	}
	s.mu.Lock()
	h, refusal := s.rateLimit.admit(time.Now(), max(req.maxTokens(), approxTokens(promptChars)), s.traits.azure)
	s.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	switch {
	case refusal == nil:
		return nil
	case s.traits.azure:
		return azureError(http.StatusTooManyRequests, "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "+
			"2024-10-21 have exceeded the "+refusal.kind+" rate limit of your current AIServices S0 pricing tier. "+
			"Please retry after "+h.Get("Retry-After")+" seconds.")
	}
	return &apiError{status: http.StatusTooManyRequests, Type: refusal.kind, Code: ptr("rate_limit_exceeded"), Message: refusal.message}
}

// decodeChatRequest reads and checks a chat-completion request.
// An Azure request names its model by the deployment in its URL.
func decodeChatRequest(w http.ResponseWriter, r *http.Request, deployment string) (chatRequest, *apiError) {
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&req); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return req, invalidRequest(http.StatusRequestEntityTooLarge, "The request body is too large.")
		}
		return req, invalidRequest(http.StatusBadRequest,
			"We could not parse the JSON body of your request. ("+err.Error()+")")
	}
	req.Model = cmp.Or(req.Model, deployment)
	if req.Model == "" {
		return req, invalidRequest(http.StatusBadRequest, "you must provide a model parameter")
	}
	if len(req.Messages) == 0 {
		e := invalidRequest(http.StatusBadRequest, "[] is too short - 'messages'")
		e.Param = ptr("messages")
		return req, e
	}
	for i, m := range req.Messages {
		if m.Role == "" {
			e := invalidRequest(http.StatusBadRequest, fmt.Sprintf("Missing required parameter: 'messages[%d].role'.", i))
			e.Param = ptr(fmt.Sprintf("messages[%d].role", i))
			return req, e
		}
	}
	return req, nil
}

// hashPrompt returns the FNV-1a hash of the message contents and their
// length in characters.
func hashPrompt(msgs []message) (hash uint64, chars int) {
	const prime = 1099511628211
	hash = 14695981039346656037
	for _, m := range msgs {
		for i := 0; i < len(m.Content); i++ {
			hash = (hash ^ uint64(m.Content[i])) * prime
		}
		hash = (hash ^ 0xff) * prime // separates the messages
		chars += utf8.RuneCountInString(string(m.Content))
	}
	return hash, chars
}

// stream writes c as server-sent events carrying the answer in pieces of a
// few words spread over d, then a usage chunk if u is not nil. It reports
// whether the client got it all. With Azure's prompt_filter_results, a first
// chunk without choices carries them and the last choice its verdict.
func stream(ctx context.Context, w http.ResponseWriter, c completion, a answer, d time.Duration, u *usage) bool {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	send := func() bool {
		_, err := io.WriteString(w, "data: ")
		if err == nil {
			err = enc.Encode(c) // ends with a newline
		}
		if err == nil {
			_, err = io.WriteString(w, "\n")
		}
		if err == nil {
			if err = rc.Flush(); errors.Is(err, http.ErrNotSupported) {
				err = nil
			}
		}
		return err == nil && ctx.Err() == nil
	}

	c.Object = "chat.completion.chunk"
	azure := c.PromptFilterResults != nil
	if azure {
		c.Choices = []choice{}
		if !send() {
			return false
		}
		c.PromptFilterResults = nil
	}
	pieces := splitWords(a.text, wordsPerChunk)
	var tick <-chan time.Time
	if pace := d / time.Duration(len(pieces)); pace > 0 {
		t := time.NewTicker(pace)
		defer t.Stop()
		tick = t.C
	}

	c.Choices = []choice{{Delta: &delta{Role: "assistant", Content: ptr("")}}}
	if !send() {
		return false
	}
	for _, p := range pieces {
		if tick != nil {
			select {
			case <-ctx.Done():
				return false
			case <-tick:
			}
		}
		c.Choices[0].Delta = &delta{Content: &p}
		if !send() {
			return false
		}
	}
	c.Choices[0].Delta, c.Choices[0].FinishReason = &delta{}, &a.finish
	if azure {
		c.Choices[0].ContentFilterResults = filterVerdict(a.finish == finishContentFilter)
	}
	if !send() {
		return false
	}
	if u != nil {
		c.Choices, c.Usage = []choice{}, u
		if !send() {
			return false
		}
	}
	_, err := io.WriteString(w, "data: [DONE]\n\n")
	_ = rc.Flush()
	return err == nil
}

// splitWords splits s into pieces of n words, each but the first starting
// with the spaces before its first word.
func splitWords(s string, n int) []string {
	pieces := make([]string, 0, len(s)/(6*n)+1)
	start, words := 0, 0
	for i := 1; i < len(s); i++ {
		if !isSpace(s[i]) || isSpace(s[i-1]) {
			continue
		}
		if words++; words == n { // s[i] starts the spaces after the nth word
			pieces = append(pieces, s[start:i])
			start, words = i, 0
		}
	}
	return append(pieces, s[start:])
}
