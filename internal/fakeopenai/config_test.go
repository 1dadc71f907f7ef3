package fakeopenai

import (
	"math"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero value", Config{}, false},
		{"everything set", Config{Latency: time.Second, FailRate: 1, RateLimitRate: 0.5, RetryAfter: time.Second, Model: "m", Seed: 7}, false},
		{"negative latency", Config{Latency: -time.Second}, true},
		{"fail rate above 1", Config{FailRate: 1.1}, true},
		{"negative rate-limit rate", Config{RateLimitRate: -0.1}, true},
		{"NaN rate", Config{FailRate: math.NaN()}, true},
		{"negative retry-after", Config{RetryAfter: -time.Second}, true},
		{"profile", Config{Profile: ProfileAzure}, false},
		{"unknown profile", Config{Profile: "bedrock"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
