package fakeopenai

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config configures a Server. The zero value is a valid, fault-free server. The tags are
// the fakeopenai program's flags and environment variables (see package config).
type Config struct {
	// Latency is how long every chat completion takes: the delay before a
	// response, or the total duration of a stream. Defaults to 0.
	Latency time.Duration `env:"FAKEOPENAI_LATENCY" flag:"latency" help:"Latency of every completion (of a whole stream)."`
	// FailRate is the probability, in [0, 1], that a chat completion fails
	// with 500. Defaults to 0.
	FailRate float64 `env:"FAKEOPENAI_FAIL_RATE" flag:"fail-rate" help:"Probability in [0, 1] of answering 500."`
	// RateLimitRate is the probability, in [0, 1], that a chat completion is
	// rejected with 429. It is rolled before FailRate. Defaults to 0.
	RateLimitRate float64 `env:"FAKEOPENAI_RATELIMIT_RATE" flag:"ratelimit-rate" help:"Probability in [0, 1] of answering 429 (rolled before the fail rate)."`
	// RetryAfter is advertised by 429 responses in the Retry-After (whole
	// seconds, at least 1) and retry-after-ms headers. Defaults to
	// DefaultRetryAfter.
	RetryAfter time.Duration `env:"FAKEOPENAI_RETRY_AFTER" flag:"retry-after" help:"Delay advertised by 429 answers."`
	// LimitRPM and LimitTPM are the organisation's requests and tokens per minute (OpenAI and
	// Azure profiles): a request over either is answered 429 with Retry-After, and every
	// answer carries x-ratelimit-* headers of them. 0 sets none: the headers then report
	// DefaultLimitRPM and DefaultLimitTPM, and nothing is refused.
	LimitRPM int `env:"FAKEOPENAI_LIMIT_RPM" flag:"limit-rpm" help:"The organisation's requests per minute: over it, 429 with Retry-After and x-ratelimit-* headers (openai and azure profiles); 0: no limit."`
	LimitTPM int `env:"FAKEOPENAI_LIMIT_TPM" flag:"limit-tpm" help:"The organisation's tokens per minute, a request counting the larger of max_tokens and its prompt's characters / 4 when it arrives; 0: no limit."`
	// Model is listed by GET /v1/models. Completions echo the requested
	// model whatever it is. Defaults to DefaultModel.
	Model string `env:"FAKEOPENAI_MODEL" flag:"model" help:"Model listed by /v1/models."`
	// Seed seeds the random faults, making them reproducible. Defaults to 0,
	// which picks a random seed.
	Seed int64 `env:"FAKEOPENAI_SEED" flag:"seed" help:"Seed of the random faults; 0 picks one."`
	// Profile is the provider whose wire format and refusals the server
	// reproduces. Defaults to ProfileOpenAI.
	Profile Profile `env:"FAKEOPENAI_PROFILE" flag:"profile" help:"Provider whose wire format and refusals to reproduce: openai, azure, vllm or ollama."`
}

// Validate reports whether the rates are within [0, 1] and the durations
// non-negative.
func (c Config) Validate() error {
	problems := c.faults().problems()
	if c.RetryAfter < 0 {
		problems = append(problems, fmt.Sprintf("retry-after must not be negative, got %v", c.RetryAfter))
	}
	if c.LimitRPM < 0 || c.LimitTPM < 0 {
		problems = append(problems, fmt.Sprintf("limits must not be negative, got %d RPM and %d TPM", c.LimitRPM, c.LimitTPM))
	}
	if p := c.Profile; p != "" {
		if err := p.Set(string(p)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return asError(problems)
}

func (c Config) faults() Faults {
	return Faults{Latency: c.Latency, FailRate: c.FailRate, RateLimitRate: c.RateLimitRate}
}

// Faults are the fault knobs that can be changed while a Server runs; see
// the Config fields of the same names.
type Faults struct {
	Latency       time.Duration
	FailRate      float64
	RateLimitRate float64 `env:"FAKEOPENAI_RATELIMIT_RATE" flag:"ratelimit-rate" help:"Probability in [0, 1] of answering 429 (rolled before the fail rate)."`
}

// Validate reports whether the rates are within [0, 1] and the latency
// non-negative.
func (f Faults) Validate() error { return asError(f.problems()) }

func (f Faults) problems() []string {
	var problems []string
	if f.Latency < 0 {
		problems = append(problems, fmt.Sprintf("latency must not be negative, got %v", f.Latency))
	}
	if !isRate(f.FailRate) {
		problems = append(problems, fmt.Sprintf("fail rate must be within [0, 1], got %v", f.FailRate))
	}
	if !isRate(f.RateLimitRate) {
		problems = append(problems, fmt.Sprintf("rate-limit rate must be within [0, 1], got %v", f.RateLimitRate))
	}
	return problems
}

// asError joins problems into a one-line error, or returns nil for none.
func asError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// isRate is false for NaN too.
func isRate(p float64) bool { return p >= 0 && p <= 1 }

// Stats counts chat-completion requests since the Server was created.
type Stats struct {
	Requests    int64 `json:"requests"`    // received
	Completed   int64 `json:"completed"`   // answered with a full completion
	Failed      int64 `json:"failed"`      // answered with an error other than 429
	RateLimited int64 `json:"rateLimited"` // answered with 429
	Canceled    int64 `json:"canceled"`    // abandoned because the client went away
}
