// Package auth issues and verifies the HS256 JWTs that carry a user's id in "sub".
package auth

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is any reason to refuse a token; the wrapped text says which.
var ErrInvalidToken = errors.New("invalid token")

// MinSecretBytes is the shortest JWT secret accepted: HS256 wants at least 256 bits.
const MinSecretBytes = 32

// Verifier checks tokens signed with one HS256 secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret []byte) *Verifier {
	return &Verifier{
		secret: secret,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // no "none", no RS/HS confusion
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(30*time.Second),
		),
	}
}

// Verify returns the user id of a valid token, else an error wrapping ErrInvalidToken.
func (v *Verifier) Verify(token string) (int64, error) {
	claims := &jwt.RegisteredClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: sub must be a positive decimal user id", ErrInvalidToken)
	}
	return id, nil
}

// Issue signs a token for userID valid for ttl from now.
func Issue(secret []byte, userID int64, ttl time.Duration, now time.Time) (string, error) {
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	})
	s, err := token.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}
