package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/propagation"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/telemetry"
)

// MyDataStore keeps what "my data" needs: users' exports and their erasure.
type MyDataStore interface {
	CreateExport(ctx context.Context, userID int64, headers map[string]string) (jobstore.Export, bool, error)
	GetExport(ctx context.Context, userID int64, id string) (jobstore.Export, error)
	ExportFile(ctx context.Context, userID int64, id, format string) ([]byte, jobstore.Export, error)
	EraseUser(ctx context.Context, userID int64) (jobstore.Erasure, error)
}

// exportURL is the status URL of the export id.
func exportURL(id string) string { return "/api/me/exports/" + id }

// exportView is an export as the API shows it: download links once it is ready.
func exportView(e jobstore.Export) job.Export {
	v := job.Export{ID: e.ID, Status: e.Status, CreatedAt: e.CreatedAt, ExpiresAt: e.ExpiresAt, Error: e.Error}
	if e.Status == job.ExportReady {
		v.CoverLetters, v.Jobs = e.CoverLetters, e.Jobs
		v.Downloads = &job.ExportFiles{JSON: exportURL(e.ID) + "/download?format=json", ZIP: exportURL(e.ID) + "/download?format=zip"}
		v.Sizes = &job.ExportSizes{JSON: e.JSONBytes, ZIP: e.ZIPBytes}
	}
	return v
}

// handleCreateExport answers POST /api/me/export: 202 with a new export being written, or
// 200 with the one of the user's still being written.
func handleCreateExport(store MyDataStore, tel *telemetry.Telemetry) fiber.Handler {
	return func(c *fiber.Ctx) error {
		headers := map[string]string{}
		tel.Propagator.Inject(c.UserContext(), propagation.MapCarrier(headers))
		e, created, err := store.CreateExport(c.UserContext(), userID(c), headers)
		switch {
		case errors.Is(err, jobstore.ErrUnknownUser):
			return newError(fiber.StatusUnauthorized, "unknown_user", "the token's user does not exist")
		case err != nil:
			return unavailable(err)
		}
		c.Location(exportURL(e.ID))
		c.Set(fiber.HeaderCacheControl, "no-store")
		status := fiber.StatusAccepted
		if !created {
			status = fiber.StatusOK
		}
		return c.Status(status).JSON(exportView(e))
	}
}

// exportError is the API's answer to an export the store did not give.
func exportError(err error, id string) error {
	switch {
	case errors.Is(err, jobstore.ErrNotFound):
		return newError(fiber.StatusNotFound, "not_found", "no export %s", id)
	case errors.Is(err, jobstore.ErrExpired):
		return newError(fiber.StatusGone, "expired", "export %s has expired: exports are kept for 24 hours; ask for a new one", id)
	case errors.Is(err, jobstore.ErrNotReady):
		return newError(fiber.StatusConflict, "not_ready", "export %s is not ready yet", id)
	}
	return unavailable(err)
}

// exportID is the path's export id, checked.
func exportID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !job.ValidID(id) {
		return "", newError(fiber.StatusBadRequest, "invalid_export_id", "the export id must be 1-64 characters of [A-Za-z0-9._:-]")
	}
	return id, nil
}

// handleGetExport answers GET /api/me/exports/:id: the user's export, 404 for another's, 410
// once expired.
func handleGetExport(store MyDataStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := exportID(c)
		if err != nil {
			return err
		}
		e, err := store.GetExport(c.UserContext(), userID(c), id)
		if err != nil {
			return exportError(err, id)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(exportView(e))
	}
}

// exportTypes are the files of an export, by ?format=: their media types.
var exportTypes = map[string]string{"json": fiber.MIMEApplicationJSONCharsetUTF8, "zip": "application/zip"}

// handleDownloadExport answers GET /api/me/exports/:id/download?format=json|zip (json when
// not given): the file, as an attachment.
func handleDownloadExport(store MyDataStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := exportID(c)
		if err != nil {
			return err
		}
		format := c.Query("format", "json")
		mediaType, ok := exportTypes[format]
		if !ok {
			return newError(fiber.StatusBadRequest, "invalid_format", "format must be json or zip")
		}
		body, e, err := store.ExportFile(c.UserContext(), userID(c), id, format)
		if err != nil {
			return exportError(err, id)
		}
		c.Set(fiber.HeaderContentType, mediaType)
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="careerops-export-%s.%s"`,
			e.CreatedAt.UTC().Format("20060102T150405Z"), format))
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		return c.Send(body)
	}
}

// UserForgetter drops a user from the users known to exist (every replica's, through
// database.UserErasedChannel; this one's at once).
type UserForgetter interface{ Forget(id int64) }

// handleEraseMe answers DELETE /api/me: everything kept about the user is deleted (see
// jobstore.Store.EraseUser) and their tokens stop working; 204.
func handleEraseMe(store MyDataStore, users UserForgetter, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := userID(c)
		e, err := store.EraseUser(c.UserContext(), id)
		switch {
		case errors.Is(err, jobstore.ErrSystemUser):
			return newError(fiber.StatusForbidden, "forbidden", "the system user cannot be deleted")
		case err != nil && !errors.Is(err, jobstore.ErrUnknownUser): // erased meanwhile: the outcome asked for
			return unavailable(err)
		}
		users.Forget(id)
		log.InfoContext(c.UserContext(), "api: user erased", slog.Int64("user_id", id), slog.Int("cancelled", len(e.Cancelled)),
			slog.Any("deleted", e.Deleted))
		return c.SendStatus(fiber.StatusNoContent)
	}
}
