package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/careerops/jobs/internal/dlq"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/ops"
	"github.com/careerops/jobs/internal/schedule"
)

// OpsSource is what the operations API reads and changes (*ops.Source).
type OpsSource interface {
	QueueStats(ctx context.Context) ([]ops.QueueStat, error)
	Tables(ctx context.Context, failures int) (ops.Tables, error)
	DeadLetters(ctx context.Context, limit int) ([]dlq.Entry, error)
	RequeueDeadLetters(ctx context.Context, target dlq.Target) (dlq.Result, error)
	Schedules(ctx context.Context) ([]schedule.Status, error)
}

// What the overview shows at most.
const (
	opsRecentFailures = 20
	opsDeadLetters    = 50
)

// requireAdmin lets through only users whose token grants admin (set by authenticator.user,
// which must run first).
func requireAdmin() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if admin, _ := c.Locals(adminKey).(bool); !admin {
			return newError(fiber.StatusForbidden, "forbidden", "this needs an admin token")
		}
		return c.Next()
	}
}

// handleOpsOverview answers with the queues, the jobs by status, the latest failures and the
// first dead letters. jaegerURL (may be "") is passed on for trace links. Its sources (SQL
// and AMQP round trips) are asked at once: the answer waits for the slowest, not their sum;
// its Server-Timing header says how long each took.
func handleOpsOverview(src OpsSource, jaegerURL string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var (
			queues  []ops.QueueStat
			tables  ops.Tables
			letters []dlq.Entry
			tasks   []schedule.Status
		)
		g, ctx := errgroup.WithContext(c.UserContext())
		var timing serverTiming
		g.Go(timing.of("queues", func() (err error) { queues, err = src.QueueStats(ctx); return err }))
		g.Go(timing.of("tables", func() (err error) { tables, err = src.Tables(ctx, opsRecentFailures); return err }))
		g.Go(timing.of("dlq", func() (err error) { letters, err = src.DeadLetters(ctx, opsDeadLetters); return err }))
		g.Go(timing.of("schedules", func() (err error) { tasks, err = src.Schedules(ctx); return err }))
		if err := g.Wait(); err != nil {
			return unavailable(err)
		}
		c.Set("Server-Timing", timing.String())
		counts, backlog := tables.JobsByStatus, tables.Outbox
		out := job.OpsOverview{
			Queues:                []job.QueueView{},
			JobsByStatus:          map[job.Status]int{},
			JobsByStatusEstimated: counts.Estimated,
			JobsByKind:            map[string]map[job.Status]int{},
			RecentFailures:        []job.FailureView{},
			DLQ:                   []job.DeadLetterView{},
			Outbox:                job.OutboxView{Waiting: backlog.Waiting, Parked: backlog.Parked, OldestDueSeconds: backlog.OldestDue.Seconds()},
			Schedules:             []job.ScheduleView{},
			JaegerURL:             jaegerURL,
		}
		for _, q := range queues {
			out.Queues = append(out.Queues, job.QueueView{Name: q.Name, Messages: q.Messages, Consumers: q.Consumers})
		}
		for _, s := range job.Statuses() {
			out.JobsByStatus[s] = counts.Counts[s]
		}
		maps.Copy(out.JobsByKind, tables.JobsByKind)
		for _, j := range tables.RecentFailures {
			out.RecentFailures = append(out.RecentFailures, job.FailureView{JobID: j.ID, UserID: j.UserID, Error: j.Error,
				UpdatedAt: j.UpdatedAt, TraceID: traceIDOf(j.TraceParent)})
		}
		for _, e := range letters {
			out.DLQ = append(out.DLQ, job.DeadLetterView{JobID: e.JobID, MessageID: e.MessageID, Reason: e.Reason, Error: e.Error})
		}
		for _, st := range tasks {
			out.Schedules = append(out.Schedules, st.View())
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(out)
	}
}

// handleOpsRequeue sends one job's dead letters, or all of them, back to work, as
// `careeropsctl dlq requeue` does, and answers with how many were requeued and skipped.
func handleOpsRequeue(src OpsSource) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !c.Is("json") {
			return newError(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
		}
		var req job.RequeueRequest // {"jobId": "…"} or {"all": true}
		if err := decodeStrict(c.Body(), &req); err != nil {
			return err
		}
		var target dlq.Target
		switch {
		case req.JobID != nil && req.All != nil:
			return newError(fiber.StatusUnprocessableEntity, "validation_failed", `give "jobId" or "all", not both`)
		case req.JobID != nil:
			if !job.ValidID(*req.JobID) {
				return newError(fiber.StatusUnprocessableEntity, "validation_failed", "jobId must be 1-64 characters of [A-Za-z0-9._:-]")
			}
			target.JobID = *req.JobID
		case req.All != nil && *req.All:
			target.All = true
		default:
			return newError(fiber.StatusUnprocessableEntity, "validation_failed", `give "jobId" or "all": true`)
		}
		res, err := src.RequeueDeadLetters(c.UserContext(), target)
		var notRequeued *dlq.NotRequeuedError
		switch {
		case errors.As(err, &notRequeued) && errors.Is(err, jobstore.ErrNotFound):
			return newError(fiber.StatusNotFound, "not_found", "job %s is neither in the dead-letter queue nor in the database", target.JobID)
		case errors.As(err, &notRequeued):
			return newError(fiber.StatusConflict, "not_failed", "job %s is not in the dead-letter queue and is %s, not failed", target.JobID, notRequeued.Status)
		case err != nil:
			return unavailable(err)
		}
		return c.JSON(job.RequeueResult{Requeued: res.Requeued, Skipped: res.Skipped, Interrupted: res.Interrupted})
	}
}

// decodeStrict decodes a body holding exactly one JSON object with only v's fields into v.
// Errors are *apiError.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(fiber.StatusBadRequest, "invalid_json", "the body must hold exactly one JSON object")
	}
	return nil
}

// traceIDOf returns the trace id of a W3C traceparent, or "" when it is not a valid one.
func traceIDOf(traceparent string) string {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": traceparent}))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// serverTiming is how long each part of an answer took, for its Server-Timing header (which
// browsers' developer tools show, and the bench reads for its slowest answers).
type serverTiming struct {
	mu    sync.Mutex
	names []string
	took  []time.Duration
}

// of returns f, recording how long it takes under name. Call it before f runs.
func (st *serverTiming) of(name string, f func() error) func() error {
	st.mu.Lock()
	i := len(st.names)
	st.names, st.took = append(st.names, name), append(st.took, 0)
	st.mu.Unlock()
	return func() error {
		start := time.Now()
		err := f()
		st.mu.Lock()
		st.took[i] = time.Since(start)
		st.mu.Unlock()
		return err
	}
}

// String is the header's value: "queues;dur=1.02, tables;dur=1.38, …" (milliseconds).
func (st *serverTiming) String() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	parts := make([]string, len(st.names))
	for i, name := range st.names {
		parts[i] = fmt.Sprintf("%s;dur=%.2f", name, float64(st.took[i].Microseconds())/1000)
	}
	return strings.Join(parts, ", ")
}
