package httpapi

import (
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
)

const userKey = "careerops.user"

// requireUser authenticates the bearer token and stores the user's id for the handlers.
func requireUser(v *auth.Verifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
		header := c.Get(fiber.HeaderAuthorization)
		token, ok := strings.CutPrefix(header, "Bearer ")
		if !ok || token == "" {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops"`)
			return newError(fiber.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>")
		}
		id, err := v.Verify(strings.TrimSpace(token))
		if err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="careerops", error="invalid_token"`)
			return newError(fiber.StatusUnauthorized, "unauthorized", "the token is invalid or expired")
		}
		c.Locals(userKey, id)
		return c.Next()
	}
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
