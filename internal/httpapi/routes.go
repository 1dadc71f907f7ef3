package httpapi

import "github.com/gofiber/fiber/v2"

// addRoutes lists every route of the API.
func addRoutes(app *fiber.App, d Deps, m *metrics) {
	app.Get("/healthz", handleHealthz())
	app.Get("/readyz", handleReadyz(d.Ready))
	app.Get("/metrics", handleMetrics(d.Registry))

	api := app.Group("/api/cover-letter", requireUser(d.Verifier, d.Store), limitUser(d.Limits.RequestsPerMinute))
	api.Post("", handleCreate(d.Store, d.Telemetry, d.Limits.Jobs, m))
	api.Get("/status/:jobId", handleStatus(d.Store))
	api.Get("/jobs", handleList(d.Store))
	api.Delete("/:jobId", handleCancel(d.Store, d.Telemetry))

	app.Use(func(c *fiber.Ctx) error {
		return newError(fiber.StatusNotFound, "not_found", "no route for %s %s", c.Method(), c.Path())
	})
}
