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
		name  string
		args  []string
		want  int64
		admin bool
	}{
		{"default ttl", []string{"token", "--user", "42"}, 42, false},
		{"explicit ttl", []string{"token", "--user", "7", "--ttl", "1h"}, 7, false},
		{"maximal ttl", []string{"token", "--ttl=8760h", "--user=9"}, 9, false},
		{"admin", []string{"token", "--user", "3", "--admin"}, 3, true},
		{"admin before the user", []string{"token", "--admin", "--user=4", "--ttl", "2h"}, 4, true},
		{"admin turned off", []string{"token", "--user", "5", "--admin=false"}, 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runOK(t, map[string]string{"JWT_SECRET": secret}, tc.args...)
			token, ok := strings.CutSuffix(res.stdout, "\n")
			if !ok || strings.ContainsAny(token, " \n") {
				t.Fatalf("stdout = %q, want just the token and a newline", res.stdout)
			}
			got, err := auth.NewVerifier([]byte(secret)).Identify(token)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if want := (auth.Identity{UserID: tc.want, Admin: tc.admin}); got != want {
				t.Errorf("identity = %+v, want %+v", got, want)
			}
			if _, err := auth.NewVerifier([]byte(strings.Repeat("x", auth.MinSecretBytes))).Verify(token); err == nil {
				t.Error("a token verified with another secret")
			}
		})
	}
}
