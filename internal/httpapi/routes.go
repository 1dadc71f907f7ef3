package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/careerops/jobs/internal/webui"
)

// addRoutes lists every route of the API.
func addRoutes(app *fiber.App, d Deps, m *metrics) {
	if d.Admin != nil {
		admin := mountHTTP(d.Admin)
		app.Get("/healthz", admin)
		app.Get("/readyz", admin)
		app.Get("/metrics", admin)
	}

	// Routes of a signed-in user. The job is named first, so every span of the request,
	// the user lookup included, carries its id.
	if d.Users == nil {
		d.Users = NewUserCache(time.Minute)
	}
	authn := newAuthenticator(d.Verifier, d.Store, d.Store, d.Users)
	limit := limitUser(d.Limits.RequestsPerMinute)
	user := chain(authn.user, limit)
	app.Post("/api/cover-letter", chain(newJobID, user, handleCreate(d.Store, d.Telemetry, d.Limits.Jobs, m))...)
	app.Get("/api/cover-letter/status/:jobId", chain(jobFromPath, user, handleStatus(d.Store))...)
	app.Get("/api/cover-letter/jobs", chain(user, handleList(d.Store))...)
	app.Delete("/api/cover-letter/:jobId", chain(jobFromPath, user, handleCancel(d.Store, d.Telemetry, d.Progress))...)
	app.Post("/api/cover-letter/:jobId/stream-token", chain(jobFromPath, user, handleStreamToken(d.Store, d.Streams.Secret))...)
	app.Get("/api/cover-letter/:jobId/events", chain(jobFromPath, authn.streamUser, limit, handleEvents(d.Store, d.Streams))...)

	if d.Notifications != nil {
		app.Get("/api/me/notifications", chain(user, handleGetNotifications(d.Notifications))...)
		app.Patch("/api/me/notifications", chain(user, handlePatchNotifications(d.Notifications))...)
		app.Get("/unsubscribe", handleUnsubscribePage(d.Verifier))
		app.Post("/unsubscribe", handleUnsubscribe(d.Verifier, d.Notifications))
	}
	if d.MyData != nil {
		app.Post("/api/me/export", chain(user, handleCreateExport(d.MyData, d.Telemetry))...)
		app.Get("/api/me/exports/:id", chain(user, handleGetExport(d.MyData))...)
		app.Get("/api/me/exports/:id/download", chain(user, handleDownloadExport(d.MyData))...)
		app.Delete("/api/me", chain(user, handleEraseMe(d.MyData, d.Users, d.Telemetry.Logger))...)
	}
	if d.Ops != nil {
		admin := chain(user, requireAdmin())
		app.Get("/api/ops/overview", chain(admin, handleOpsOverview(d.Ops, d.JaegerUIURL))...)
		app.Post("/api/ops/dlq/requeue", chain(admin, handleOpsRequeue(d.Ops))...)
	}
	if d.Usage != nil {
		app.Get("/api/ops/usage", chain(user, requireAdmin(), handleOpsUsage(d.Usage))...)
		app.Post("/api/ops/usage/refresh", chain(user, requireAdmin(), handleOpsUsageRefresh(d.Usage))...)
		app.Get("/api/me/usage", chain(user, handleMyUsage(d.Usage, d.Limits.Jobs.TokensPerDay))...)
	}
	if d.DevUsers != nil {
		app.Post("/dev/token", handleDevToken(d.DevUsers, d.Streams.Secret))
	}

	webui.Routes(app) // the pages: GET /, /ops, /assets/*

	routes := newRouteTable(app.GetRoutes(true))
	app.Use(func(c *fiber.Ctx) error {
		if allow := routes.allowed(c.Path()); len(allow) > 0 {
			c.Set(fiber.HeaderAllow, strings.Join(allow, ", "))
			return newError(fiber.StatusMethodNotAllowed, "method_not_allowed", "%s takes %s, not %s",
				c.Path(), strings.Join(allow, ", "), c.Method())
		}
		return newError(fiber.StatusNotFound, "not_found", "no route for %s %s", c.Method(), c.Path())
	})
}

// routeTable knows which methods each route path answers, to tell a wrong method (405 with
// Allow) from an unknown path (404).
type routeTable []routeMethod

type routeMethod struct {
	path   *regexp.Regexp
	method string
}

func newRouteTable(routes []fiber.Route) routeTable {
	var t routeTable
	for _, r := range routes {
		segments := strings.Split(r.Path, "/")
		for i, seg := range segments {
			switch {
			case seg == "*":
				segments[i] = ".*"
			case strings.HasPrefix(seg, ":"):
				segments[i] = "[^/]+"
			default:
				segments[i] = regexp.QuoteMeta(seg)
			}
		}
		t = append(t, routeMethod{path: regexp.MustCompile("^" + strings.Join(segments, "/") + "/?$"), method: r.Method})
	}
	return t
}

// allowed lists the methods that have a route for path, sorted.
func (t routeTable) allowed(path string) []string {
	var methods []string
	for _, r := range t {
		if r.path.MatchString(path) && !slices.Contains(methods, r.method) {
			methods = append(methods, r.method)
		}
	}
	slices.Sort(methods)
	return methods
}

// mountHTTP serves a net/http handler as a Fiber route. The request's context is detached
// from fasthttp's RequestCtx, whose Done races with the server's shutdown (as c.UserContext()
// is in the Fiber handlers).
func mountHTTP(h http.Handler) fiber.Handler {
	return adaptor.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
	}))
}

// chain flattens handlers and handler lists into one list.
func chain(hs ...any) []fiber.Handler {
	var out []fiber.Handler
	for _, h := range hs {
		switch h := h.(type) {
		case fiber.Handler:
			out = append(out, h)
		case []fiber.Handler:
			out = append(out, h...)
		default:
			panic("httpapi: chain of something that is not a handler") // a programming error at start-up
		}
	}
	return out
}
