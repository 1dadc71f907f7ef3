package llm

import (
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// Where a Completion's token counts come from.
const (
	// UsageReported: the server reported them.
	UsageReported = "reported"
	// UsageEstimated: the server reported none (self-hosted servers that ignore
	// stream_options.include_usage), so they were counted with a tokenizer.
	UsageEstimated = "estimated"
)

// Token overheads of the chat format, as OpenAI's cookbook counts them: each message is
// wrapped in a few tokens, and the answer is primed with a few more.
const (
	tokensPerMessage = 3
	tokensPerReply   = 3
)

// tokenCounter counts tokens with the encoding of a model, loaded on first use (the
// vocabularies are embedded: nothing is downloaded).
type tokenCounter struct {
	codec func() (tokenizer.Codec, error)
}

func newTokenCounter(model string) *tokenCounter {
	return &tokenCounter{codec: sync.OnceValues(func() (tokenizer.Codec, error) { return codecFor(model) })}
}

// codecFor picks the encoding of model: o200k_base for OpenAI's current families, the
// model's own for older OpenAI models, else cl100k_base, close to the tiktoken-based
// vocabularies of open models such as Llama 3.
func codecFor(model string) (tokenizer.Codec, error) {
	m := strings.ToLower(model[strings.LastIndex(model, "/")+1:])
	if IsReasoningModel(m) || strings.HasPrefix(m, "gpt-4o") || strings.HasPrefix(m, "gpt-4.1") || strings.HasPrefix(m, "chatgpt-4o") {
		return tokenizer.Get(tokenizer.O200kBase)
	}
	if c, err := tokenizer.ForModel(tokenizer.Model(m)); err == nil {
		return c, nil
	}
	return tokenizer.Get(tokenizer.Cl100kBase)
}

// count is the number of tokens of s; should the tokenizer fail, about one per four bytes.
func (t *tokenCounter) count(s string) int {
	if c, err := t.codec(); err == nil {
		if n, err := c.Count(s); err == nil {
			return n
		}
	}
	return (len(s) + 3) / 4
}

// estimateUsage fills out's token counts from the prompt and the answer.
func (t *tokenCounter) estimateUsage(out *Completion, system, user string) {
	out.PromptTokens = t.count(system) + t.count(user) + 2*tokensPerMessage + tokensPerReply
	out.CompletionTokens = t.count(out.Text)
	out.UsageSource = UsageEstimated
}
