package riverpeer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
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
	known  *httpapi.UserCache
	log    *slog.Logger
}

// NewAPI returns the API on pool (an insert-only River client), checking tokens signed with
// secret.
func NewAPI(pool *pgxpool.Pool, secret []byte, log *slog.Logger) (*API, error) {
	c, err := newClient(pool, &river.Config{Logger: log})
	if err != nil {
		return nil, err
	}
	return &API{pool: pool, river: c, verify: auth.NewVerifier(secret), known: httpapi.NewUserCache(time.Minute), log: log}, nil
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
	ok, err = a.userExists(c.UserContext(), id.UserID)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, &peerError{fiber.StatusUnauthorized, "unknown_user", "the token's user does not exist"}
	}
	return id.UserID, nil
}

// userExists reports whether id is a user, remembered as our api's authenticator does.
func (a *API) userExists(ctx context.Context, id int64) (bool, error) {
	if a.known.Has(id) {
		return true, nil
	}
	var exists bool
	if err := a.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		a.known.Add(id)
	}
	return exists, nil
}
