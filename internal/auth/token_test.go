package auth

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Now()
	valid, err := Issue(secret, 42, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	noneToken := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"42","exp":9999999999}`)) + "."

	tests := []struct {
		name    string
		token   string
		want    int64
		wantErr bool
	}{
		{"valid token gives its user", valid, 42, false},
		{"empty", "", 0, true},
		{"garbage", "not.a.jwt", 0, true},
		{"alg none is refused", noneToken, 0, true},
		{"HS384 is refused", sign(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": now.Add(-time.Hour).Unix()}), 0, true},
		{"missing exp", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42"}), 0, true},
		{"non-numeric sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"negative sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "-3", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"missing sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), 0, true},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": now.Add(2 * time.Hour).Unix(), "iat": now.Add(time.Hour).Unix()}), 0, true},
	}
	v := NewVerifier(secret)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(tt.token)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify = %d, %v; want ErrInvalidToken", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Verify = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
