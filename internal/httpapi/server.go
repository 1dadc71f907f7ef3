// Package httpapi is the public HTTP API: Fiber routes to submit cover-letter jobs, read their
// status and list them, plus health and metrics endpoints.
package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
)

// JobStore is what the handlers need from the job store.
type JobStore interface {
	Create(ctx context.Context, n jobstore.NewJob) (jobstore.Job, bool, error)
	Cancel(ctx context.Context, userID int64, jobID string, headers map[string]string) (jobstore.Job, error)
	UserExists(ctx context.Context, id int64) (bool, error)
	Get(ctx context.Context, userID int64, jobID string) (jobstore.Job, error)
	// GetMany reads the jobs of ids, whoever owns them (the event streams' poll).
	GetMany(ctx context.Context, ids []string) ([]jobstore.Job, error)
	// SpendStreamToken records a stream token's one use; false if it was used before.
	SpendStreamToken(ctx context.Context, tokenID string, spendableUntil time.Time) (bool, error)
	List(ctx context.Context, p jobstore.ListParams) ([]jobstore.Job, *jobstore.Cursor, error)
}

// Deps are the server's collaborators.
type Deps struct {
	// TrustClientTraceContext takes a request's traceparent as the parent of its trace: only
	// behind a gateway that sets it. Otherwise every request starts a trace of its own.
	TrustClientTraceContext bool
	Store                   JobStore
	Verifier                *auth.Verifier
	// Admin serves /healthz, /readyz and /metrics (see package admin); nil: no such routes.
	Admin http.Handler
	// Registry gets the HTTP metrics.
	Registry  *prometheus.Registry
	Telemetry *telemetry.Telemetry
	Limits    Limits
	Streams   Streams
	// Progress announces cancellations to the streams; nil: none.
	Progress Announcer
	// Notifications keeps users' choice of emails: GET/PATCH /api/me/notifications and the
	// unsubscribe link (/unsubscribe); nil: no such routes.
	Notifications NotificationStore
	// Ops feeds the operations API (admin tokens only); nil: no operations API.
	Ops OpsSource
	// Usage feeds GET /api/ops/usage (admin tokens only) and GET /api/me/usage; nil: no such
	// routes.
	Usage UsageSource
	// JaegerUIURL links traces from the operations page.
	JaegerUIURL string
	// MyData keeps users' exports and erases users: POST /api/me/export, GET
	// /api/me/exports/:id[/download], DELETE /api/me; nil: no such routes.
	MyData MyDataStore
	// Users are the users known to exist, shared with whatever forgets erased ones (the
	// api's LISTEN on database.UserErasedChannel); nil: a cache of the server's own.
	Users *UserCache
	// DevUsers, when set, enables POST /dev/token: tokens for anyone. Development only.
	DevUsers DevUsers
}

// Announcer publishes progress events.
type Announcer interface {
	Publish(progress.Event)
}

// Limits protect the service and the LLM bill from one user.
type Limits struct {
	// RequestsPerMinute caps a user's API requests per api replica (in memory). 0: no limit.
	RequestsPerMinute int
	// Jobs caps job creation and LLM tokens across replicas (in the database).
	Jobs jobstore.Limits
}

// New builds the Fiber app with its middleware and routes.
func New(d Deps) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "careerops-api",
		DisableStartupMessage: true,
		BodyLimit:             maxBodyBytes,
		ReadBufferSize:        8 << 10, // the largest request head: URL and headers
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
		ErrorHandler:          errorHandler(d.Telemetry.Logger),
		// Fiber reuses a connection's buffers for its next request: without Immutable, a
		// string from c.Method(), c.Params() or c.Get() kept past the handler (a metric label,
		// a map key) changes under the one who kept it.
		Immutable: true,
		// A connection holds no read buffer while its handler runs or it idles between
		// requests: an open event stream costs 6-7 kB less (TestThousandIdleStreamsCostLittle).
		ReduceMemoryUsage: true,
	})
	m := newMetrics(d.Registry)
	app.Use(
		takeStreamToken, // first: nothing after it records the URL with the token
		requestid.New(),
		serverSpans(d.Telemetry.TracerProvider, clientPropagator(d)),
		accessLog(d.Telemetry.Logger, m), // inside the server span: its lines carry the trace
		recover.New(),                    // inside accessLog, so a panic is logged and counted as the 500 it becomes
	)
	addRoutes(app, d, m)
	return app
}

// CloseUnusedOnStop wraps ln so that once stop is closed (the server is stopping) every
// connection that has not sent a byte yet is closed: the server's shutdown waits for its
// connections, and fasthttp treats a new one as busy until it has sent a request or its
// read timeout passed (a load balancer's pre-opened connection, a port scan).
func CloseUnusedOnStop(ln net.Listener, stop <-chan struct{}) net.Listener {
	t := &unusedListener{Listener: ln, conns: map[*countingConn]struct{}{}}
	go func() {
		<-stop
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		for c := range t.conns {
			if !c.used.Load() {
				_ = c.Conn.Close() // it sent nothing: nobody waits for an answer
			}
		}
	}()
	return t
}

// unusedListener tracks the connections it accepted until they close.
type unusedListener struct {
	net.Listener
	mu      sync.Mutex
	conns   map[*countingConn]struct{}
	stopped bool
}

func (l *unusedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		_ = c.Close()
		return cc, nil // the server reads nothing and drops it
	}
	l.conns[cc] = struct{}{}
	return cc, nil
}

// countingConn notes whether its peer sent anything.
type countingConn struct {
	net.Conn
	used atomic.Bool
	l    *unusedListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.used.Store(true)
	}
	return n, err
}

// Close closes gently. fasthttp refuses a body over the limit by its Content-Length (413)
// and closes at once, with the body still arriving; closed with unread bytes, the kernel
// resets the connection, which can discard the 413 before the client reads it (the client
// sees a network error, and may retry). So the write side is shut first (the answer and a
// FIN go out), and what still arrives is read and dropped for at most lingerTime before the
// close, as nginx's lingering close does. A peer that has closed ends it at once.
func (c *countingConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil || tc.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return c.Conn.Close()
	}
	go func() {
		_, _ = io.Copy(io.Discard, tc) // ends at the peer's FIN, an error or the deadline
		_ = tc.Close()                 // closing a socket after shutdown: nothing to report
	}()
	return nil
}

// lingerTime bounds how long a closed connection still drops what its peer sends.
const lingerTime = 5 * time.Second

// clientPropagator reads the trace context of a request only when the clients are trusted to
// set it (a gateway in front of the api): a public client must not choose a job's trace.
func clientPropagator(d Deps) propagation.TextMapPropagator {
	if d.TrustClientTraceContext {
		return d.Telemetry.Propagator
	}
	return propagation.NewCompositeTextMapPropagator() // reads nothing: every request starts a trace
}
