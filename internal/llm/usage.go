package llm

import (
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
	"github.com/tiktoken-go/tokenizer/codec"
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

// tokenCounter counts tokens with the encoding of a model, loaded on first use. The
// vocabularies are compiled in (nothing is downloaded); only the two used here are linked.
type tokenCounter struct {
	codec func() tokenizer.Codec
}

func newTokenCounter(model string) *tokenCounter {
	return &tokenCounter{codec: sync.OnceValue(func() tokenizer.Codec { return codecFor(model) })}
}

// codecFor picks the encoding of model: o200k_base for OpenAI's current families (gpt-4o,
// gpt-4.1, the reasoning models), else cl100k_base: GPT-4 and GPT-3.5's, and close to the
// tiktoken-based vocabularies of open models such as Llama 3.
func codecFor(model string) tokenizer.Codec {
	m := strings.ToLower(model[strings.LastIndex(model, "/")+1:])
	for _, family := range []string{"gpt-4o", "gpt-4.1", "chatgpt-4o"} {
		if strings.HasPrefix(m, family) {
			return codec.NewO200kBase()
		}
	}
	if IsReasoningModel(m) {
		return codec.NewO200kBase()
	}
	return codec.NewCl100kBase()
}

// count is the number of tokens of s; should the tokenizer fail, about one per four bytes.
func (t *tokenCounter) count(s string) int {
	if n, err := t.codec().Count(s); err == nil {
		return n
	}
	return (len(s) + 3) / 4
}

// prompt is the number of tokens of a prompt in the chat format.
func (t *tokenCounter) prompt(system, user string) int {
	return t.count(system) + t.count(user) + 2*tokensPerMessage + tokensPerReply
}

// estimateUsage fills out's token counts from the prompt and the answer.
func (t *tokenCounter) estimateUsage(out *Completion, system, user string) {
	out.PromptTokens = t.prompt(system, user)
	out.CompletionTokens = t.count(out.Text)
	out.UsageSource = UsageEstimated
}
