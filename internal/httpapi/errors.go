package httpapi

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v2"
)

// apiError is an error the client sees: a status and {"error": {"code", "message"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// HTTPStatus is the status the client gets.
func (e *apiError) HTTPStatus() int { return e.Status }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorHandler turns every error a handler or Fiber returns into the contract's JSON error.
// Anything not already an apiError is a server fault: logged, and answered without details.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var apiErr *apiError
		var fiberErr *fiber.Error
		var unavailable *unavailableError
		switch {
		case errors.As(err, &apiErr):
		case errors.As(err, &unavailable):
			log.WarnContext(c.UserContext(), "api: dependency unavailable", slog.String("route", c.Route().Path),
				slog.String("error", err.Error()))
			apiErr = newError(fiber.StatusServiceUnavailable, "unavailable", "the service is briefly unavailable; retry shortly")
		case errors.As(err, &fiberErr):
			apiErr = fromFiber(fiberErr)
		default:
			log.ErrorContext(c.UserContext(), "api: request failed", slog.String("method", c.Method()),
				slog.String("route", c.Route().Path), slog.String("error", err.Error()))
			apiErr = newError(fiber.StatusInternalServerError, "internal", "the server could not complete the request")
		}
		if apiErr.Status == fiber.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, "5")
		}
		return c.Status(apiErr.Status).JSON(fiber.Map{"error": apiErr})
	}
}

func fromFiber(e *fiber.Error) *apiError {
	code := map[int]string{
		fiber.StatusNotFound:                    "not_found",
		fiber.StatusMethodNotAllowed:            "method_not_allowed",
		fiber.StatusRequestEntityTooLarge:       "body_too_large",
		fiber.StatusRequestHeaderFieldsTooLarge: "headers_too_large",
		fiber.StatusRequestURITooLong:           "uri_too_long",
		fiber.StatusRequestTimeout:              "request_timeout",
		fiber.StatusBadRequest:                  "bad_request",
	}[e.Code]
	if code == "" {
		code = "error"
	}
	msg := e.Message
	if e.Code == fiber.StatusRequestEntityTooLarge {
		msg = fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes)
	}
	return &apiError{Status: e.Code, Code: code, Message: msg}
}
