package ctlcmd_test

import (
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/auth"
)

func TestToken_PrintsAJWTForTheUser(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", auth.MinSecretBytes)
	for _, tc := range []struct {
		name string
		args []string
		want int64
	}{
		{"default ttl", []string{"token", "--user", "42"}, 42},
		{"explicit ttl", []string{"token", "--user", "7", "--ttl", "1h"}, 7},
		{"maximal ttl", []string{"token", "--ttl=8760h", "--user=9"}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, map[string]string{"JWT_SECRET": secret}, tc.args...)
			if res.err != nil {
				t.Fatalf("err = %v", res.err)
			}
			token, ok := strings.CutSuffix(res.stdout, "\n")
			if !ok || strings.ContainsAny(token, " \n") {
				t.Fatalf("stdout = %q, want just the token and a newline", res.stdout)
			}
			got, err := auth.NewVerifier([]byte(secret)).Verify(token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tc.want {
				t.Errorf("user = %d, want %d", got, tc.want)
			}
			if _, err := auth.NewVerifier([]byte(strings.Repeat("x", auth.MinSecretBytes))).Verify(token); err == nil {
				t.Error("a token verified with another secret")
			}
		})
	}
}
