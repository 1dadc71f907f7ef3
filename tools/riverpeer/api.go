package riverpeer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/httpapi"
	"github.com/careerops/jobs/internal/job"
)

// API is the peer's POST /api/cover-letter (and /readyz).
type API struct {
	pool   *pgxpool.Pool
	river  *river.Client[pgx.Tx]
	verify *auth.Verifier
	known  *knownUsers
	log    *slog.Logger
}

// NewAPI returns the API on pool (an insert-only River client), checking tokens signed with
// secret.
func NewAPI(pool *pgxpool.Pool, secret []byte, log *slog.Logger) (*API, error) {
	c, err := newClient(pool, &river.Config{Logger: log})
	if err != nil {
		return nil, err
	}
	return &API{pool: pool, river: c, verify: auth.NewVerifier(secret), known: &knownUsers{ttl: time.Minute, seen: map[int64]time.Time{}}, log: log}, nil
}

// App is the Fiber app, configured as our api's server is.
func (a *API) App() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName: "riverpeer-api", DisableStartupMessage: true, BodyLimit: 100 << 10, ReadBufferSize: 8 << 10,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		Immutable: true, ErrorHandler: a.errorHandler,
	})
	app.Get("/readyz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Post("/api/cover-letter", a.create)
	return app
}

// peerError is an answer the peer gives beside the ones ValidateCreate returns: the contract's
// {"code", "message"}.
type peerError struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *peerError) Error() string   { return e.Message }
func (e *peerError) HTTPStatus() int { return e.status }

func (a *API) errorHandler(c *fiber.Ctx, err error) error {
	var st interface{ HTTPStatus() int }
	var fe *fiber.Error
	switch {
	case errors.As(err, &st):
		return c.Status(st.HTTPStatus()).JSON(fiber.Map{"error": err})
	case errors.As(err, &fe):
		return c.Status(fe.Code).JSON(fiber.Map{"error": &peerError{fe.Code, "bad_request", fe.Message}})
	}
	a.log.Warn("riverpeer: request failed", slog.String("error", err.Error()))
	return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"error": &peerError{503, "unavailable", "the service is briefly unavailable; retry shortly"}})
}

func (a *API) create(c *fiber.Ctx) error {
	userID, err := a.authenticate(c)
	if err != nil {
		return err
	}
	if !c.Is("json") {
		return &peerError{fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json"}
	}
	key := c.Get("Idempotency-Key")
	req, err := httpapi.ValidateCreate(c.Body(), key)
	if err != nil {
		return err
	}
	res, err := a.river.Insert(c.UserContext(), Args{UserID: userID, IdempotencyKey: key,
		JobDescription: req.JobDescription, CVText: req.CVText, Tone: req.Tone}, nil)
	if err != nil {
		return err
	}
	id := strconv.FormatInt(res.Job.ID, 10)
	c.Location("/api/cover-letter/status/" + id)
	status := fiber.StatusAccepted
	if res.UniqueSkippedAsDuplicate {
		status = fiber.StatusOK
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(status).JSON(job.Accepted{JobID: id, Status: job.StatusPending})
}

// authenticate is our api's check: a valid user token for a user that exists.
func (a *API) authenticate(c *fiber.Ctx) (int64, error) {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || token == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops"`)
		return 0, &peerError{fiber.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>"}
	}
	id, err := a.verify.Identify(strings.TrimSpace(token))
	if err != nil {
		return 0, &peerError{fiber.StatusUnauthorized, "invalid_token", "the token is invalid or expired"}
	}
	ok, err = a.known.exists(c.UserContext(), a.pool, id.UserID)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, &peerError{fiber.StatusUnauthorized, "unknown_user", "the token's user does not exist"}
	}
	return id.UserID, nil
}

// knownUsers remembers the users found to exist for ttl, as our api's authenticator does.
type knownUsers struct {
	ttl  time.Duration
	mu   sync.Mutex
	seen map[int64]time.Time
}

func (k *knownUsers) exists(ctx context.Context, pool *pgxpool.Pool, id int64) (bool, error) {
	k.mu.Lock()
	at, ok := k.seen[id]
	k.mu.Unlock()
	if ok && time.Since(at) < k.ttl {
		return true, nil
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		k.mu.Lock()
		k.seen[id] = time.Now()
		k.mu.Unlock()
	}
	return exists, nil
}
