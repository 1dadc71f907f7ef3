// Package analytics folds finished jobs into usage and cost rollups (per hour and per UTC
// day, by user, kind, model and outcome) and reads them back: the analytics.process kind
// writes them, GET /api/ops/usage and GET /api/me/usage read them, and a Prometheus
// collector exposes their totals.
package analytics

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Price is what a model's tokens cost, in millionths of the currency unit per million
// tokens (so 150000 is 0.15 a million tokens).
type Price struct {
	Input, Output int64
}

// Prices are the models' prices by model name; the model "*" prices every model not listed
// (none: those cost 0).
type Prices map[string]Price

// AnyModel is the Prices entry of the models not listed, and the rollups' model of rows that
// count every model together.
const AnyModel = "*"

// DefaultPrices are the list prices of common OpenAI models (USD, per million tokens, as
// published when this was written): LLM_PRICES adds to them or overrides them.
func DefaultPrices() Prices {
	return Prices{
		"gpt-4o-mini":  {Input: 150_000, Output: 600_000},
		"gpt-4o":       {Input: 2_500_000, Output: 10_000_000},
		"gpt-4.1-nano": {Input: 100_000, Output: 400_000},
		"gpt-4.1-mini": {Input: 400_000, Output: 1_600_000},
		"gpt-4.1":      {Input: 2_000_000, Output: 8_000_000},
	}
}

// ParsePrices reads LLM_PRICES: "model=input/output" pairs separated by ';' or ',', each price
// in millionths of the currency unit per million tokens, added to DefaultPrices (a model
// named again takes the new price). "" is DefaultPrices.
func ParsePrices(s string) (Prices, error) {
	p := DefaultPrices()
	for _, pair := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		model, price, ok := strings.Cut(strings.TrimSpace(pair), "=")
		model = strings.TrimSpace(model)
		in, out, ok2 := strings.Cut(price, "/")
		if !ok || !ok2 || model == "" {
			return nil, fmt.Errorf("LLM_PRICES: %q is not model=input/output", pair)
		}
		var (
			pr  Price
			err error
		)
		if pr.Input, err = parseMicros(in); err == nil {
			pr.Output, err = parseMicros(out)
		}
		if err != nil {
			return nil, fmt.Errorf("LLM_PRICES: %s: %w", model, err)
		}
		p[model] = pr
	}
	return p, nil
}

// parseMicros reads a non-negative whole number of millionths.
func parseMicros(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > 1_000_000_000_000 {
		return 0, fmt.Errorf("%q is not a whole number of millionths per million tokens from 0 to 10^12", s)
	}
	return n, nil
}

// Cost is what prompt and completion tokens of model cost, in millionths, rounded to the
// nearest (the rollups compute the same in SQL, per bucket).
func (p Prices) Cost(model string, prompt, completion int64) int64 {
	pr, ok := p[model]
	if !ok {
		pr = p[AnyModel]
	}
	return (prompt*pr.Input + completion*pr.Output + 500_000) / 1_000_000
}

// columns are the prices as three parallel arrays, sorted by model, for SQL's unnest.
func (p Prices) columns() (models []string, input, output []int64) {
	models = slices.Sorted(maps.Keys(p))
	for _, m := range models {
		input, output = append(input, p[m].Input), append(output, p[m].Output)
	}
	return models, input, output
}

// String lists the prices as LLM_PRICES would, sorted by model.
func (p Prices) String() string {
	models, in, out := p.columns()
	parts := make([]string, len(models))
	for i, m := range models {
		parts[i] = fmt.Sprintf("%s=%d/%d", m, in[i], out[i])
	}
	return strings.Join(parts, ";")
}
