// Package auth issues and verifies the HS256 JWTs that carry a user's id in "sub": user
// tokens (from the CareerOps backend, or careeropsctl), short-lived stream tokens that open
// one job's event stream, and long-lived unsubscribe tokens that only turn a user's emails
// off (the link in every email).
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is any reason to refuse a token; the wrapped text says which.
var ErrInvalidToken = errors.New("invalid token")

// MinSecretBytes is the shortest JWT secret accepted: HS256 wants at least 256 bits.
const MinSecretBytes = 32

// leeway is the clock skew tolerated on exp and iat.
const leeway = 30 * time.Second

// streamAudience marks stream tokens, and unsubscribeAudience unsubscribe tokens; user
// tokens carry neither, so no kind of token can pass for another.
const (
	streamAudience      = "careerops-stream"
	unsubscribeAudience = "careerops-unsubscribe"
)

// UnsubscribeTTL is how long an unsubscribe link works: a year, as mails are kept.
const UnsubscribeTTL = 365 * 24 * time.Hour

// claims are the registered claims plus ours.
type claims struct {
	jwt.RegisteredClaims
	// Admin grants the operations pages and API.
	Admin bool `json:"admin,omitempty"`
	// Job is the only job a stream token opens.
	Job string `json:"job,omitempty"`
}

// Identity is who a user token speaks for.
type Identity struct {
	UserID int64
	Admin  bool
}

// Verifier checks tokens signed with one HS256 secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
	// users are the user tokens found valid, until they expire: a client sends the same
	// token with every request, and checking its signature and claims again was a tenth of
	// the api's CPU at its limit.
	mu    sync.Mutex
	users map[string]verified
}

// verified is a user token found valid, and when it stops being so.
type verified struct {
	id    Identity
	until time.Time
}

// maxVerified bounds the tokens a Verifier remembers (~100 bytes each, beside the token).
const maxVerified = 10_000

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret []byte) *Verifier {
	v := &Verifier{secret: secret, now: time.Now, users: map[string]verified{}}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // no "none", no RS/HS confusion
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// Verify returns the user id of a valid user token, else an error wrapping ErrInvalidToken.
func (v *Verifier) Verify(token string) (int64, error) {
	id, err := v.Identify(token)
	return id.UserID, err
}

// Identify returns who a valid user token speaks for. A token found valid is remembered
// until it expires (its exp plus the leeway, as the check itself allows).
func (v *Verifier) Identify(token string) (Identity, error) {
	now := v.now()
	v.mu.Lock()
	known, ok := v.users[token]
	v.mu.Unlock()
	if ok && now.Before(known.until) {
		return known.id, nil
	}
	c, id, err := v.parse(token)
	if err != nil {
		return Identity{}, err
	}
	if slices.Contains(c.Audience, streamAudience) || slices.Contains(c.Audience, unsubscribeAudience) {
		return Identity{}, fmt.Errorf("%w: a stream or unsubscribe token is not a user token", ErrInvalidToken)
	}
	who := Identity{UserID: id, Admin: c.Admin}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.users) >= maxVerified {
		clear(v.users) // a new start costs one check per token in use
	}
	v.users[token] = verified{id: who, until: c.ExpiresAt.Add(leeway)}
	return who, nil
}

// StreamGrant is what a valid stream token grants: one opening of one job's stream. The
// caller spends TokenID (see jobstore.SpendStreamToken) so that the token opens it only once.
type StreamGrant struct {
	UserID  int64
	TokenID string
	// SpendableUntil is when the token stops being accepted (its expiry plus the leeway): a
	// record of its use must be kept until then.
	SpendableUntil time.Time
}

// VerifyStream returns the grant of a valid stream token for jobID.
func (v *Verifier) VerifyStream(token, jobID string) (StreamGrant, error) {
	c, id, err := v.parse(token)
	if err != nil {
		return StreamGrant{}, err
	}
	if !slices.Contains(c.Audience, streamAudience) || c.Job == "" || c.Job != jobID || c.ID == "" {
		return StreamGrant{}, fmt.Errorf("%w: not a stream token for this job", ErrInvalidToken)
	}
	return StreamGrant{UserID: id, TokenID: c.ID, SpendableUntil: c.ExpiresAt.Add(leeway)}, nil
}

// VerifyUnsubscribe returns the user id of a valid unsubscribe token: it turns that user's
// emails off, and grants nothing else.
func (v *Verifier) VerifyUnsubscribe(token string) (int64, error) {
	c, id, err := v.parse(token)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(c.Audience, unsubscribeAudience) || slices.Contains(c.Audience, streamAudience) {
		return 0, fmt.Errorf("%w: not an unsubscribe token", ErrInvalidToken)
	}
	return id, nil
}

func (v *Verifier) parse(token string) (*claims, int64, error) {
	c := &claims{}
	if _, err := v.parser.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return v.secret, nil }); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 {
		return nil, 0, fmt.Errorf("%w: sub must be a positive decimal user id", ErrInvalidToken)
	}
	return c, id, nil
}

// IssueOption adjusts a user token.
type IssueOption func(*claims)

// AsAdmin grants the operations pages and API.
func AsAdmin() IssueOption { return func(c *claims) { c.Admin = true } }

// Issue signs a user token for userID valid for ttl from now.
func Issue(secret []byte, userID int64, ttl time.Duration, now time.Time, opts ...IssueOption) (string, error) {
	c := claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	for _, o := range opts {
		o(&c)
	}
	return sign(secret, c)
}

// IssueStream signs a token that opens jobID's event stream once, within ttl. Its id (jti)
// is random, for the record of its use.
func IssueStream(secret []byte, userID int64, jobID string, ttl time.Duration, now time.Time) (string, error) {
	return sign(secret, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        rand.Text(),
			Subject:   strconv.FormatInt(userID, 10),
			Audience:  jwt.ClaimStrings{streamAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Job: jobID,
	})
}

// IssueUnsubscribe signs the token of userID's one-click unsubscribe link (in every email),
// valid for ttl from now (UnsubscribeTTL).
func IssueUnsubscribe(secret []byte, userID int64, ttl time.Duration, now time.Time) (string, error) {
	return sign(secret, claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		Audience:  jwt.ClaimStrings{unsubscribeAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}})
}

func sign(secret []byte, c claims) (string, error) {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}
