package app

import (
	"io"
	"strings"
	"testing"
)

// DEV_TOKEN_ENDPOINT mints admin tokens for anyone who asks: the api refuses to start with it
// on an address other machines can reach.
func TestDevTokenEndpointOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL": "postgres://127.0.0.1:1/none", "RABBITMQ_URL": "amqp://127.0.0.1:1/",
		"JWT_SECRET": strings.Repeat("s", 32), "DEV_TOKEN_ENDPOINT": "true",
	}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080", "example.com:8080"} {
		vars := map[string]string{"HTTP_ADDR": addr}
		for k, v := range base {
			vars[k] = v
		}
		err := API(Options{})(t.Context(), nil, env(vars), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DEV_TOKEN_ENDPOINT") {
			t.Errorf("HTTP_ADDR=%s with DEV_TOKEN_ENDPOINT=true: %v, want a refusal", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "localhost:0", "[::1]:8080"} {
		c := DefaultAPIConfig()
		c.JWTSecret, c.DevTokenEndpoint, c.HTTPAddr = strings.Repeat("s", 32), true, addr
		if err := c.Validate(); err != nil {
			t.Errorf("HTTP_ADDR=%s: %v", addr, err)
		}
	}
}
