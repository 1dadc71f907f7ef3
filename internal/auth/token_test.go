package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func signTest(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
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
		{"HS384 is refused", signTest(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"wrong secret", signTest(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"expired", signTest(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": now.Add(-time.Hour).Unix()}), 0, true},
		{"missing exp", signTest(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42"}), 0, true},
		{"non-numeric sub", signTest(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"negative sub", signTest(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "-3", "exp": now.Add(time.Hour).Unix()}), 0, true},
		{"missing sub", signTest(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), 0, true},
		{"issued in the future", signTest(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "42", "exp": now.Add(2 * time.Hour).Unix(), "iat": now.Add(time.Hour).Unix()}), 0, true},
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

func TestStreamTokensOpenOneJobOnly(t *testing.T) {
	t.Parallel()
	v := NewVerifier(secret)
	now := time.Now()
	stream, err := IssueStream(secret, 7, "job-1", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.VerifyStream(stream, "job-1")
	if err != nil || g.UserID != 7 || len(g.TokenID) < 20 || g.SpendableUntil.Before(now.Add(time.Minute)) {
		t.Fatalf("VerifyStream = %+v, %v", g, err)
	}
	if other, _ := IssueStream(secret, 7, "job-1", time.Minute, now); other == stream {
		t.Fatal("two stream tokens are the same: each must have its own id")
	}
	if _, err := v.VerifyStream(stream, "job-2"); !errors.Is(err, ErrInvalidToken) {
		t.Fatal("a stream token opened another job")
	}
	if _, err := v.Verify(stream); !errors.Is(err, ErrInvalidToken) {
		t.Fatal("a stream token passed for a user token")
	}
	user, _ := Issue(secret, 7, time.Hour, now)
	if _, err := v.VerifyStream(user, "job-1"); !errors.Is(err, ErrInvalidToken) {
		t.Fatal("a user token passed for a stream token")
	}
	expired, _ := IssueStream(secret, 7, "job-1", -time.Hour, now.Add(-2*time.Hour))
	if _, err := v.VerifyStream(expired, "job-1"); !errors.Is(err, ErrInvalidToken) {
		t.Fatal("an expired stream token was accepted")
	}
}

func TestAdminClaim(t *testing.T) {
	t.Parallel()
	v := NewVerifier(secret)
	admin, _ := Issue(secret, 1, time.Hour, time.Now(), AsAdmin())
	plain, _ := Issue(secret, 2, time.Hour, time.Now())
	if id, err := v.Identify(admin); err != nil || !id.Admin || id.UserID != 1 {
		t.Fatalf("admin token = %+v, %v", id, err)
	}
	if id, err := v.Identify(plain); err != nil || id.Admin {
		t.Fatalf("plain token = %+v, %v", id, err)
	}
}

// TestUnsubscribeTokensOnlyUnsubscribe: an unsubscribe token is no user or stream token, and
// neither of those is an unsubscribe token.
func TestUnsubscribeTokensOnlyUnsubscribe(t *testing.T) {
	t.Parallel()
	v := NewVerifier(secret)
	now := time.Now()
	unsub, err := IssueUnsubscribe(secret, 7, UnsubscribeTTL, now)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.VerifyUnsubscribe(unsub); err != nil || id != 7 {
		t.Fatalf("VerifyUnsubscribe = %d, %v", id, err)
	}
	if id, err := v.VerifyUnsubscribe(unsub); err != nil || id != 7 {
		t.Fatalf("a second use: %d, %v (an unsubscribe link works again and again)", id, err)
	}
	if _, err := v.Identify(unsub); !errors.Is(err, ErrInvalidToken) {
		t.Error("an unsubscribe token passed for a user token")
	}
	if _, err := v.VerifyStream(unsub, ""); !errors.Is(err, ErrInvalidToken) {
		t.Error("an unsubscribe token passed for a stream token")
	}
	user, _ := Issue(secret, 7, time.Hour, now, AsAdmin())
	stream, _ := IssueStream(secret, 7, "job-1", time.Minute, now)
	expired, _ := IssueUnsubscribe(secret, 7, time.Hour, now.Add(-2*time.Hour))
	forged, _ := IssueUnsubscribe([]byte(strings.Repeat("x", 32)), 7, time.Hour, now)
	for name, token := range map[string]string{"a user token": user, "a stream token": stream, "an expired one": expired,
		"one of another secret": forged, "junk": "not.a.token"} {
		if _, err := v.VerifyUnsubscribe(token); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s passed for an unsubscribe token", name)
		}
	}
}

// TestRememberedTokensStillExpire: a user token found valid is remembered, but not past its
// expiry (plus the leeway the check allows), and a refused token is never remembered.
func TestRememberedTokensStillExpire(t *testing.T) {
	t.Parallel()
	start := time.Now().Truncate(time.Second)
	token, err := Issue(secret, 7, time.Hour, start, AsAdmin())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := IssueStream(secret, 7, "job-1", time.Hour, start)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(secret)
	tests := []struct {
		name    string
		token   string
		at      time.Duration // after start
		wantErr bool
	}{
		{"valid when issued", token, 0, false},
		{"valid until its expiry", token, time.Hour, false},
		{"valid within the leeway", token, time.Hour + leeway - time.Second, false},
		{"refused past the leeway, though remembered", token, time.Hour + leeway + time.Second, true},
		{"a stream token is not a user token", stream, 0, true},
		{"nor the second time", stream, time.Second, true},
	}
	for _, tt := range tests { // in order: each step leaves the Verifier as the next finds it
		v.now = func() time.Time { return start.Add(tt.at) }
		id, err := v.Identify(tt.token)
		if tt.wantErr != (err != nil) || (err == nil && id != (Identity{UserID: 7, Admin: true})) {
			t.Fatalf("%s: Identify = %+v, %v", tt.name, id, err)
		}
	}
}
