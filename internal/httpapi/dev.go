package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"net/mail"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/job"
)

// DevUsers finds or creates the users the dev token endpoint signs in (*jobstore.Store).
type DevUsers interface {
	FindOrAddUser(ctx context.Context, email string) (int64, error)
}

const (
	// devTokenTTL is how long a dev token is valid.
	devTokenTTL = 24 * time.Hour
	// devEmail is the user a dev token is for when the request names none.
	devEmail = "dev@example.com"
	// maxEmailBytes is the longest address SMTP allows (RFC 5321).
	maxEmailBytes = 254
)

// handleDevToken signs anyone in, for development: it finds or creates the user of the email
// asked for (dev@example.com by default) and answers with a 24-hour token for it, an admin one
// if asked. An empty body asks for the defaults.
func handleDevToken(users DevUsers, secret []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req job.DevTokenRequest
		if len(bytes.TrimSpace(c.Body())) > 0 {
			if !c.Is("json") {
				return newError(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
			}
			if err := decodeStrict(c.Body(), &req); err != nil {
				return err
			}
		}
		email := cmp.Or(req.Email, devEmail)
		if !bareEmail(email) {
			return newError(fiber.StatusUnprocessableEntity, "validation_failed", "email must be a bare address such as ada@example.com")
		}
		id, err := users.FindOrAddUser(c.UserContext(), email)
		if err != nil {
			return unavailable(err)
		}
		var opts []auth.IssueOption
		if req.Admin {
			opts = append(opts, auth.AsAdmin())
		}
		token, err := auth.Issue(secret, id, devTokenTTL, time.Now(), opts...)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(job.DevToken{Email: email, Token: token, UserID: id})
	}
}

// bareEmail accepts an RFC 5322 address such as ada@example.com, not "Ada <ada@…>", as
// `careeropsctl user add` does.
func bareEmail(s string) bool {
	if len(s) > maxEmailBytes {
		return false
	}
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Name == "" && addr.Address == s
}
