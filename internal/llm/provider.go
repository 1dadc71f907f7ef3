package llm

import (
	"fmt"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// APIType is the kind of endpoint a Client calls.
type APIType string

const (
	// APITypeOpenAI is OpenAI's API or any OpenAI-compatible one (vLLM, Ollama, LiteLLM…):
	// POST {BaseURL}/chat/completions with a bearer key.
	APITypeOpenAI APIType = "openai"
	// APITypeAzure is Azure OpenAI: POST {BaseURL}/openai/deployments/{Deployment}/chat/completions
	// ?api-version={APIVersion} with an api-key header.
	APITypeAzure APIType = "azure"
)

// ModelKind says how a model is asked.
type ModelKind string

const (
	// ModelKindAuto picks ModelKindReasoning for OpenAI's reasoning families (o1, o3, o4…,
	// gpt-5 and later, also behind a "provider/" prefix), else ModelKindChat.
	ModelKindAuto ModelKind = "auto"
	// ModelKindChat models take max_tokens.
	ModelKindChat ModelKind = "chat"
	// ModelKindReasoning models think before they answer: they take max_completion_tokens
	// (reasoning included), no max_tokens and no temperature, and report reasoning tokens.
	ModelKindReasoning ModelKind = "reasoning"
)

// DefaultAzureAPIVersion is the api-version sent to Azure when none is set: the latest
// generally available one of the data-plane inference API.
const DefaultAzureAPIVersion = "2024-10-21"

// IsReasoningModel reports whether model names one of OpenAI's reasoning models: the
// o-series (o1, o3-mini, o4-mini…) and gpt-5 onwards (gpt-5, gpt-5.1-mini…), also behind a
// "provider/" prefix such as LiteLLM's "openai/o3".
func IsReasoningModel(model string) bool {
	m := strings.ToLower(model[strings.LastIndex(model, "/")+1:])
	if rest, ok := strings.CutPrefix(m, "gpt-"); ok {
		n := 0
		for _, r := range rest {
			if r < '0' || r > '9' {
				break
			}
			n = n*10 + int(r-'0')
		}
		return n >= 5
	}
	return len(m) >= 2 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9'
}

// reasoning tells whether requests for model are shaped for a reasoning model.
func (k ModelKind) reasoning(model string) bool {
	switch k {
	case ModelKindReasoning:
		return true
	case ModelKindChat:
		return false
	}
	return IsReasoningModel(model)
}

// Validate reports the first problem with the provider settings of c.
func (c Config) Validate() error {
	switch c.APIType {
	case "", APITypeOpenAI, APITypeAzure:
	default:
		return fmt.Errorf("unknown API type %q, want %s or %s", c.APIType, APITypeOpenAI, APITypeAzure)
	}
	switch c.ModelKind {
	case "", ModelKindAuto, ModelKindChat, ModelKindReasoning:
	default:
		return fmt.Errorf("unknown model kind %q, want %s, %s or %s", c.ModelKind, ModelKindAuto, ModelKindChat, ModelKindReasoning)
	}
	switch {
	case c.Model == "":
		return fmt.Errorf("the model must not be empty")
	case c.MaxTokens < 0:
		return fmt.Errorf("the token cap must not be negative, got %d", c.MaxTokens)
	}
	return nil
}

// clientConfig is go-openai's configuration for c's endpoint.
func (c Config) clientConfig() openai.ClientConfig {
	if c.APIType != APITypeAzure {
		oc := openai.DefaultConfig(c.APIKey)
		if c.BaseURL != "" {
			oc.BaseURL = strings.TrimRight(c.BaseURL, "/")
		}
		return oc
	}
	oc := openai.DefaultAzureConfig(c.APIKey, strings.TrimRight(c.BaseURL, "/"))
	oc.APIVersion = c.APIVersion
	deployment := c.Deployment
	oc.AzureModelMapperFunc = func(string) string { return deployment }
	return oc
}
