package fakeopenai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

const (
	maxRequestBody = 8 << 20
	wordsPerChunk  = 3
)

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	id := s.requests.Add(1)
	if e := authorize(r); e != nil {
		s.reject(w, e)
		return
	}
	req, e := decodeChatRequest(w, r)
	if e != nil {
		s.reject(w, e)
		return
	}
	d, err := parseDirectives(req.Messages)
	if err != nil {
		s.reject(w, invalidRequest(http.StatusBadRequest, err.Error()))
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
	if sleep(r.Context(), wait) != nil {
		s.canceled.Add(1)
		return
	}

	prompt, promptChars := hashPrompt(req.Messages)
	if status := s.fault(d, prompt); status != 0 {
		s.reject(w, injectedError(status))
		return
	}

	letter := composeLetter(req.Messages, prompt)
	u := usage{
		PromptTokens:     approxTokens(promptChars),
		CompletionTokens: approxTokens(utf8.RuneCountInString(letter)),
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	c := completion{
		ID:                "chatcmpl-fake" + strconv.FormatInt(id, 10),
		Created:           time.Now().Unix(),
		Model:             req.Model,
		SystemFingerprint: "fp_fakeopenai",
	}
	if !req.Stream {
		c.Object = "chat.completion"
		c.Choices = []choice{{Message: &delta{Role: "assistant", Content: &letter}, FinishReason: ptr("stop")}}
		c.Usage = &u
		writeJSON(w, http.StatusOK, c)
		s.completed.Add(1)
		return
	}
	var streamUsage *usage
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		streamUsage = &u
	}
	if stream(r.Context(), w, c, letter, latency-wait, streamUsage) {
		s.completed.Add(1)
	} else {
		s.canceled.Add(1)
	}
}

// decodeChatRequest reads and checks a chat-completion request.
func decodeChatRequest(w http.ResponseWriter, r *http.Request) (chatRequest, *apiError) {
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&req); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return req, invalidRequest(http.StatusRequestEntityTooLarge, "The request body is too large.")
		}
		return req, invalidRequest(http.StatusBadRequest,
			"We could not parse the JSON body of your request. ("+err.Error()+")")
	}
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

// stream writes c as server-sent events carrying letter in pieces of a few
// words spread over d, then a usage chunk if u is not nil. It reports
// whether the client got it all.
func stream(ctx context.Context, w http.ResponseWriter, c completion, letter string, d time.Duration, u *usage) bool {
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

	pieces := splitWords(letter, wordsPerChunk)
	var tick <-chan time.Time
	if pace := d / time.Duration(len(pieces)); pace > 0 {
		t := time.NewTicker(pace)
		defer t.Stop()
		tick = t.C
	}

	c.Object = "chat.completion.chunk"
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
	c.Choices[0].Delta, c.Choices[0].FinishReason = &delta{}, ptr("stop")
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

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
