package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/webui"
)

// NotificationStore keeps users' choice of notifications.
type NotificationStore interface {
	Notifications(ctx context.Context, userID int64) (jobstore.Notifications, error)
	SetEmailNotifications(ctx context.Context, userID int64, on bool) (jobstore.Notifications, error)
}

// handleGetNotifications answers GET /api/me/notifications.
func handleGetNotifications(store NotificationStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		n, err := store.Notifications(c.UserContext(), userID(c))
		return answerNotifications(c, n, err)
	}
}

// handlePatchNotifications answers PATCH /api/me/notifications {"email": bool}.
func handlePatchNotifications(store NotificationStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !c.Is("json") {
			return newError(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
		}
		on, err := decodeNotificationsUpdate(c.Body())
		if err != nil {
			return err
		}
		n, err := store.SetEmailNotifications(c.UserContext(), userID(c), on)
		return answerNotifications(c, n, err)
	}
}

// answerNotifications answers with the user's choice as stored, or with the store's error.
func answerNotifications(c *fiber.Ctx, n jobstore.Notifications, err error) error {
	switch {
	case errors.Is(err, jobstore.ErrNoEmailAddress):
		return newError(fiber.StatusConflict, "no_email_address", "there is no email address on file for you: emails cannot be turned on")
	case errors.Is(err, jobstore.ErrUnknownUser):
		return newError(fiber.StatusUnauthorized, "unknown_user", "the token's user does not exist")
	case err != nil:
		return unavailable(err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(job.Notifications{Email: n.Email, Address: n.Address})
}

// decodeNotificationsUpdate reads {"email": bool}: exactly one object, no other field.
func decodeNotificationsUpdate(body []byte) (bool, error) {
	var req job.NotificationsUpdate
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return false, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, newError(fiber.StatusBadRequest, "invalid_json", "the body must hold exactly one JSON object")
	}
	if req.Email == nil {
		return false, newError(fiber.StatusUnprocessableEntity, "validation_failed", "email (true or false) is required")
	}
	return *req.Email, nil
}

// unsubscribeToken is the token of an unsubscribe request: the form's field, else the URL's
// (which takeStreamToken moved off the URL before anything logged it).
func unsubscribeToken(c *fiber.Ctx) string {
	if t := c.FormValue("token"); t != "" {
		return t
	}
	t, _ := c.Locals(streamTokenKey).(string)
	return t
}

// handleUnsubscribePage answers GET /unsubscribe?token=…: a page that asks to confirm with a
// button, so that a mail scanner following links turns nothing off.
func handleUnsubscribePage(v *auth.Verifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
		token := unsubscribeToken(c)
		if _, err := v.VerifyUnsubscribe(token); err != nil {
			return webui.SendUnsubscribePage(c, fiber.StatusBadRequest, webui.UnsubscribeInvalid, "")
		}
		return webui.SendUnsubscribePage(c, fiber.StatusOK, webui.UnsubscribeConfirm, token)
	}
}

// handleUnsubscribe answers POST /unsubscribe: the page's form (token=…) or a mail client's
// RFC 8058 one-click POST to the List-Unsubscribe URL (?token=…, body
// List-Unsubscribe=One-Click). It turns the token's user's emails off, signed in or not.
func handleUnsubscribe(v *auth.Verifier, store NotificationStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		user, err := v.VerifyUnsubscribe(unsubscribeToken(c))
		if err != nil {
			return webui.SendUnsubscribePage(c, fiber.StatusBadRequest, webui.UnsubscribeInvalid, "")
		}
		_, err = store.SetEmailNotifications(c.UserContext(), user, false)
		if err != nil && !errors.Is(err, jobstore.ErrUnknownUser) { // a deleted user gets no email either
			return unavailable(err)
		}
		return webui.SendUnsubscribePage(c, fiber.StatusOK, webui.UnsubscribeDone, "")
	}
}
