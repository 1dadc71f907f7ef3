package httpapi

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/progress"
	"github.com/careerops/jobs/internal/telemetry"
)

// viewOf is a job as the API shows it.
func viewOf(j jobstore.Job) job.View {
	v := job.View{JobID: j.ID, Status: j.Status, Tone: j.Tone, Attempts: j.Attempts,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, CompletedAt: j.CompletedAt}
	if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": j.TraceParent})); sc.IsValid() {
		v.TraceID = sc.TraceID().String()
	}
	switch j.Status {
	case job.StatusCompleted:
		v.CoverLetter = j.CoverLetter
	case job.StatusFailed, job.StatusCancelled:
		v.Error = j.Error
	}
	return v
}

func statusURL(id string) string { return "/api/cover-letter/status/" + id }

func handleCreate(store JobStore, tel *telemetry.Telemetry, limits jobstore.Limits, m *metrics) fiber.Handler {
	tracer := tel.Tracer("github.com/careerops/jobs/internal/httpapi")
	return func(c *fiber.Ctx) error {
		if !c.Is("json") {
			return newError(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
		}
		key := c.Get("Idempotency-Key")
		v, err := ValidateCreate(c.Body(), key)
		if err != nil {
			return err
		}
		req := createRequest(v)
		id := c.Locals(jobIDLocal).(string)
		// The message is created now, in the outbox, and sent later by a relay: this PRODUCER
		// span is its creation context, the parent of the worker's processing span.
		ctx, span := tracer.Start(c.UserContext(), broker.OpCreate+" "+job.QueueGenerate, trace.WithSpanKind(trace.SpanKindProducer))
		defer span.End()
		if span.IsRecording() {
			span.SetAttributes(broker.SpanAttributes(broker.OpCreate, job.QueueGenerate, id+"/0")...)
		}
		headers := map[string]string{}
		tel.Propagator.Inject(ctx, propagation.MapCarrier(headers))
		j, created, err := store.Create(ctx, jobstore.NewJob{
			ID: id, UserID: userID(c), JobDescription: req.JobDescription, CVText: req.CVText, Tone: req.Tone,
			IdempotencyKey: key, RequestHash: req.hash(), Headers: headers, Limits: limits,
		})
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		}
		if !created && err == nil { // an idempotent replay: name the job it answered with
			trace.SpanFromContext(c.UserContext()).SetAttributes(telemetry.JobIDKey.String(j.ID))
			span.SetAttributes(telemetry.JobIDKey.String(j.ID))
		}
		var limitErr *jobstore.LimitError
		switch {
		case errors.As(err, &limitErr):
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(limitErr.RetryAfter.Seconds()))))
			what := map[string]string{"jobs_per_minute": "cover letters per minute", "tokens_per_day": "LLM tokens today"}[limitErr.Limit]
			return newError(fiber.StatusTooManyRequests, "quota_exceeded", "you have used your %s; retry in %s",
				what, limitErr.RetryAfter.Round(time.Second))
		case errors.Is(err, jobstore.ErrUnknownUser):
			return newError(fiber.StatusUnauthorized, "unknown_user", "the token's user does not exist")
		case errors.Is(err, jobstore.ErrIdempotencyConflict):
			return newError(fiber.StatusConflict, "idempotency_conflict", "this Idempotency-Key was used with a different request")
		case err != nil:
			return unavailable(err)
		}
		m.accepted.WithLabelValues(map[bool]string{true: "false", false: "true"}[created]).Inc()
		c.Location(statusURL(j.ID))
		status := fiber.StatusAccepted
		if !created {
			status = fiber.StatusOK
			c.Set("Idempotent-Replayed", "true")
		}
		return c.Status(status).JSON(job.Accepted{JobID: j.ID, Status: j.Status})
	}
}

func handleStatus(store JobStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Params("jobId")
		if !job.ValidID(id) {
			return newError(fiber.StatusBadRequest, "invalid_job_id", "jobId must be 1-64 characters of [A-Za-z0-9._:-]")
		}
		j, err := store.Get(c.UserContext(), userID(c), id)
		switch {
		case errors.Is(err, jobstore.ErrNotFound):
			return newError(fiber.StatusNotFound, "not_found", "no job %s", id)
		case err != nil:
			return unavailable(err)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(viewOf(j))
	}
}

func handleList(store JobStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q, err := parseListQuery(c.Query("limit"), c.Query("status"), c.Query("cursor"))
		if err != nil {
			return err
		}
		jobs, next, err := store.List(c.UserContext(), jobstore.ListParams{UserID: userID(c), Status: q.Status, Limit: q.Limit, After: q.After})
		if err != nil {
			return unavailable(err)
		}
		out := job.Page{Jobs: make([]job.View, 0, len(jobs))}
		for _, j := range jobs {
			out.Jobs = append(out.Jobs, viewOf(j))
		}
		if next != nil {
			out.NextCursor = encodeCursor(*next)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(out)
	}
}

func handleCancel(store JobStore, tel *telemetry.Telemetry, announce Announcer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Params("jobId")
		if !job.ValidID(id) {
			return newError(fiber.StatusBadRequest, "invalid_job_id", "jobId must be 1-64 characters of [A-Za-z0-9._:-]")
		}
		headers := map[string]string{}
		tel.Propagator.Inject(c.UserContext(), propagation.MapCarrier(headers))
		j, err := store.Cancel(c.UserContext(), userID(c), id, headers)
		switch {
		case errors.Is(err, jobstore.ErrNotFound):
			return newError(fiber.StatusNotFound, "not_found", "no job %s", id)
		case errors.Is(err, jobstore.ErrFinal):
			return newError(fiber.StatusConflict, "job_finished", "job %s has already finished", id)
		case err != nil:
			return unavailable(err)
		}
		if announce != nil {
			announce.Publish(progress.Event{Type: progress.TypeStatus, JobID: j.ID, Status: j.Status, Attempt: j.Attempts})
		}
		return c.JSON(viewOf(j))
	}
}

// errorType names an error's class for error.type.
func errorType(err error) string {
	var limitErr *jobstore.LimitError
	switch {
	case errors.As(err, &limitErr):
		return "quota_exceeded"
	case errors.Is(err, jobstore.ErrUnknownUser):
		return "unknown_user"
	case errors.Is(err, jobstore.ErrIdempotencyConflict):
		return "idempotency_conflict"
	default:
		return "database_error"
	}
}

// unavailable reports a failure of the database as a 503 the client may retry; data the
// database refuses is the client's mistake (422), never an outage.
func unavailable(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case database.IsDataError(err):
		// PostgreSQL refused the request's data: the client's mistake, which a retry repeats.
		return newError(fiber.StatusUnprocessableEntity, "validation_failed", "the request holds data that cannot be stored")
	}
	return &unavailableError{err}
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }
