package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/telemetry"

	"github.com/gofiber/fiber/v2/middleware/limiter"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
)

const (
	userKey    = "careerops.user"
	adminKey   = "careerops.admin"
	jobIDLocal = "careerops.job"
)

// newJobID names the job a POST will create, before anything else runs.
func newJobID(c *fiber.Ctx) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	c.Locals(jobIDLocal, id.String())
	c.SetUserContext(telemetry.WithJobID(c.UserContext(), id.String()))
	return c.Next()
}

// jobFromPath marks the request as working for the job of its path.
func jobFromPath(c *fiber.Ctx) error {
	if id := c.Params("jobId"); job.ValidID(id) {
		c.SetUserContext(telemetry.WithJobID(c.UserContext(), id))
	}
	return c.Next()
}

// UserChecker says whether a user exists.
type UserChecker interface {
	UserExists(ctx context.Context, id int64) (bool, error)
}

// StreamTokens records the one use of each stream token, across replicas.
type StreamTokens interface {
	SpendStreamToken(ctx context.Context, tokenID string, spendableUntil time.Time) (bool, error)
}

// authenticator checks who a request speaks for: a user token in the Authorization header
// or, for a job's event stream, a stream token in ?token= (EventSource cannot set headers),
// which opens the stream once. Users are checked to exist, and known ones remembered for a
// minute.
type authenticator struct {
	v      *auth.Verifier
	users  UserChecker
	tokens StreamTokens
	known  *UserCache
}

func newAuthenticator(v *auth.Verifier, users UserChecker, tokens StreamTokens, known *UserCache) *authenticator {
	if known == nil {
		known = NewUserCache(time.Minute)
	}
	return &authenticator{v: v, users: users, tokens: tokens, known: known}
}

// user requires a valid user token and stores the user's id (and admin flag) for handlers.
func (a *authenticator) user(c *fiber.Ctx) error {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || token == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops"`)
		return newError(fiber.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>")
	}
	id, err := a.v.Identify(strings.TrimSpace(token))
	if err != nil {
		return invalidToken(c)
	}
	return a.admit(c, id)
}

// streamTokenKey holds the stream token takeStreamToken took off the URL.
const streamTokenKey = "careerops.streamToken"

// takeStreamToken moves a token in ?token= (a stream token, as EventSource sends it, or an
// unsubscribe link's) from the URL into the request's locals before any middleware records
// the URL: spans and logs must not carry a token that opens a stream for minutes, or one that
// turns a user's emails off for a year.
func takeStreamToken(c *fiber.Ctx) error {
	uri := c.Request().URI()
	args := uri.QueryArgs()
	if token := args.Peek("token"); len(token) > 0 {
		c.Locals(streamTokenKey, string(token))
		args.Del("token")
		uri.SetQueryStringBytes(args.QueryString())
		// The request line as received, which url.full and c.OriginalURL() read, too.
		c.Request().Header.SetRequestURIBytes(uri.RequestURI())
	}
	return c.Next()
}

// streamUser accepts a stream token for the path's job (taken off the URL by
// takeStreamToken) not used before, else a user token.
func (a *authenticator) streamUser(c *fiber.Ctx) error {
	token, _ := c.Locals(streamTokenKey).(string)
	if token == "" {
		return a.user(c)
	}
	grant, err := a.v.VerifyStream(token, c.Params("jobId"))
	if err != nil {
		return invalidToken(c)
	}
	fresh, err := a.tokens.SpendStreamToken(c.UserContext(), grant.TokenID, grant.SpendableUntil)
	if err != nil {
		return unavailable(err)
	}
	if !fresh { // a copy of the URL (a log, a proxy, a span) opens nothing
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops", error="invalid_token"`)
		return newError(fiber.StatusUnauthorized, "token_used", "a stream token opens the stream once; ask for a new one")
	}
	return a.admit(c, auth.Identity{UserID: grant.UserID})
}

func (a *authenticator) admit(c *fiber.Ctx, id auth.Identity) error {
	if !a.known.Has(id.UserID) {
		ok, err := a.users.UserExists(c.UserContext(), id.UserID)
		if err != nil {
			return unavailable(err)
		}
		if !ok {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops", error="invalid_token"`)
			return newError(fiber.StatusUnauthorized, "unknown_user", "the token's user does not exist")
		}
		a.known.Add(id.UserID)
	}
	c.Locals(userKey, id.UserID)
	c.Locals(adminKey, id.Admin)
	return c.Next()
}

func invalidToken(c *fiber.Ctx) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops", error="invalid_token"`)
	return newError(fiber.StatusUnauthorized, "unauthorized", "the token is invalid or expired")
}

// UserCache remembers users known to exist, for ttl, so that a token's user is looked up
// once a minute rather than on every request (the River peer of the bench uses it too). An
// erased user is forgotten at once (Forget, on every replica through
// database.UserErasedChannel) and not remembered again for ttl: a lookup that began before
// the erasure committed cannot bring them back.
type UserCache struct {
	ttl    time.Duration
	mu     sync.Mutex
	seen   map[int64]time.Time
	erased map[int64]time.Time
}

// NewUserCache remembers users for ttl.
func NewUserCache(ttl time.Duration) *UserCache {
	return &UserCache{ttl: ttl, seen: map[int64]time.Time{}, erased: map[int64]time.Time{}}
}

// Forget drops id (an erased user): the next request of theirs looks them up, and finds
// nobody.
func (u *UserCache) Forget(id int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.seen, id)
	if len(u.erased) > 100_000 {
		clear(u.erased)
	}
	u.erased[id] = time.Now()
}

// Reset forgets everyone: after the erasures' LISTEN connection was lost, some may have been
// missed.
func (u *UserCache) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.seen)
}

// Has reports whether id was found to exist within ttl.
func (u *UserCache) Has(id int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	at, ok := u.seen[id]
	return ok && time.Since(at) < u.ttl
}

// Add records that id exists.
func (u *UserCache) Add(id int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if at, ok := u.erased[id]; ok && time.Since(at) < u.ttl {
		return // erased moments ago: the lookup that found them may have raced the erasure
	}
	if len(u.seen) > 100_000 { // bounded: forget everyone rather than grow without end
		clear(u.seen)
	}
	u.seen[id] = time.Now()
}

// limitUser caps each user's requests per minute on this replica (sliding window); over
// it, 429 with Retry-After.
func limitUser(perMinute int) fiber.Handler {
	if perMinute <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return limiter.New(limiter.Config{
		Max:               perMinute,
		Expiration:        time.Minute,
		LimiterMiddleware: limiter.SlidingWindow{},
		KeyGenerator:      func(c *fiber.Ctx) string { return strconv.FormatInt(userID(c), 10) },
		LimitReached: func(c *fiber.Ctx) error {
			return newError(fiber.StatusTooManyRequests, "rate_limited",
				"more than %d requests in a minute; retry after %s seconds", perMinute, c.GetRespHeader(fiber.HeaderRetryAfter))
		},
	})
}

func userID(c *fiber.Ctx) int64 {
	id, _ := c.Locals(userKey).(int64)
	return id
}

// accessLog logs one line per request and records its duration.
func accessLog(log *slog.Logger, m *metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			// Render the error now so the log and the metrics see the final status.
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		route := c.Route().Path
		m.observe(c.Method(), route, status, time.Since(start))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		if c.Path() != "/healthz" && c.Path() != "/readyz" && c.Path() != "/metrics" {
			log.Log(c.UserContext(), level, "api: request",
				slog.String("method", c.Method()), slog.String("route", route), slog.Int("status", status),
				slog.Duration("took", time.Since(start)), slog.String("request_id", c.GetRespHeader(fiber.HeaderXRequestID)))
		}
		return nil
	}
}
