package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/job"
)

// UsageSource reads the usage rollups (*analytics.Store) and a user's tokens of the day
// (*jobstore.Store), and asks for a rollup run.
type UsageSource interface {
	Usage(ctx context.Context, q analytics.Query) ([]analytics.Row, error)
	SeenUntil(ctx context.Context) (time.Time, error)
	TokensToday(ctx context.Context, userID int64) (int64, time.Time, error)
	// Refresh enqueues an analytics.process job with args (checked: job.ErrInvalidMessage)
	// and returns its id.
	Refresh(ctx context.Context, args json.RawMessage) (string, error)
}

// handleOpsUsageRefresh answers POST /api/ops/usage/refresh (admins): an analytics.process
// job now, with the body as its arguments ({} or none; {"rebuildFrom": RFC 3339} recomputes
// every bucket since then). 202 {"jobId"}.
func handleOpsUsageRefresh(src UsageSource) fiber.Handler {
	return func(c *fiber.Ctx) error {
		args := json.RawMessage(`{}`)
		if len(bytes.TrimSpace(c.Body())) > 0 {
			if !c.Is("json") {
				return newError(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
			}
			args = c.Body()
		}
		id, err := src.Refresh(c.UserContext(), args)
		switch {
		case errors.Is(err, job.ErrInvalidMessage):
			return newError(fiber.StatusUnprocessableEntity, "validation_failed", "%s", err.Error())
		case err != nil:
			return unavailable(err)
		}
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"jobId": id})
	}
}

// handleOpsUsage answers GET /api/ops/usage?from=&to=&groupBy= (admins): the rollup rows of
// the window and their totals.
func handleOpsUsage(src UsageSource) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q, err := usageQuery(c)
		if err != nil {
			return err
		}
		rows, err := src.Usage(c.UserContext(), q)
		if err != nil {
			return unavailable(err)
		}
		out := job.Usage{From: q.From, To: q.To, Grain: q.Grain, ByUser: q.ByUser, ByModel: q.ByModel, Rows: make([]job.UsageRow, 0, len(rows))}
		var total analytics.Total
		for _, r := range rows {
			total.Add(r)
			v := job.UsageRow{Bucket: r.Bucket, Kind: r.Kind, Outcome: job.Status(r.Outcome), UsageTotals: totalsView(rowTotal(r)), P50Ms: r.P50Ms, P95Ms: r.P95Ms}
			if q.ByUser {
				v.UserID = &r.UserID
			}
			if q.ByModel {
				v.Model = &r.Model
			}
			out.Rows = append(out.Rows, v)
		}
		out.Totals = totalsView(total)
		if out.SeenUntil, err = seenUntil(c.UserContext(), src); err != nil {
			return unavailable(err)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(out)
	}
}

// handleMyUsage answers GET /api/me/usage?from=&to=: the user's finished jobs by UTC day
// (30 days by default) and today's tokens against tokensPerDay (0: no limit).
func handleMyUsage(src UsageSource, tokensPerDay int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if g := c.Query("groupBy"); g != "" {
			return newError(fiber.StatusUnprocessableEntity, "validation_failed", "your usage is by day: groupBy is for /api/ops/usage")
		}
		q, err := usageQuery(c)
		if err != nil {
			return err
		}
		q.UserID = userID(c)
		ctx := c.UserContext()
		rows, err := src.Usage(ctx, q)
		if err != nil {
			return unavailable(err)
		}
		out := job.MyUsage{Days: []job.MyUsageDay{}}
		var day analytics.Total
		for i, r := range rows {
			day.Add(r)
			if i == len(rows)-1 || !rows[i+1].Bucket.Equal(r.Bucket) {
				out.Days = append(out.Days, job.MyUsageDay{Day: r.Bucket, Jobs: day.Jobs, Failed: day.DeadLetters,
					PromptTokens: day.PromptTokens, CompletionTokens: day.CompletionTokens})
				day = analytics.Total{}
			}
		}
		tokens, resets, err := src.TokensToday(ctx, q.UserID)
		if err != nil {
			return unavailable(err)
		}
		out.Today = job.TokenBudget{Tokens: tokens, Budget: int64(tokensPerDay), ResetsAt: resets}
		if tokensPerDay > 0 {
			left := max(int64(tokensPerDay)-tokens, 0)
			out.Today.Remaining = &left
		}
		if out.SeenUntil, err = seenUntil(ctx, src); err != nil {
			return unavailable(err)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(out)
	}
}

// usageQuery reads a usage query's parameters; bad ones are a 422.
func usageQuery(c *fiber.Ctx) (analytics.Query, error) {
	q, err := analytics.ParseQuery(c.Query("from"), c.Query("to"), c.Query("groupBy"), time.Now())
	if errors.Is(err, analytics.ErrQuery) {
		return q, newError(fiber.StatusUnprocessableEntity, "validation_failed", "%s", err.Error())
	}
	return q, err
}

// seenUntil is the rollups' watermark, nil if they never ran.
func seenUntil(ctx context.Context, src UsageSource) (*time.Time, error) {
	t, err := src.SeenUntil(ctx)
	if err != nil || t.IsZero() {
		return nil, err
	}
	return &t, nil
}

func rowTotal(r analytics.Row) analytics.Total {
	var t analytics.Total
	t.Add(r)
	return t
}

func totalsView(t analytics.Total) job.UsageTotals {
	return job.UsageTotals{Jobs: t.Jobs, PromptTokens: t.PromptTokens, CompletionTokens: t.CompletionTokens,
		CostMicros: t.CostMicros, Retries: t.Retries, DeadLetters: t.DeadLetters}
}
