package kinds

import (
	"context"
	"errors"
	"time"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

// analyticsCron is when the rollups run by default: every 5 minutes.
const analyticsCron = "*/5 * * * *"

// AnalyticsDeps are what the rollups need.
type AnalyticsDeps struct {
	// Store writes the rollups.
	Store *analytics.Store
	// Prices estimate the cost (LLM_PRICES); nil: analytics.DefaultPrices.
	Prices analytics.Prices
	// Margin: see analytics.DefaultMargin, its default.
	Margin time.Duration
	// Ran, if set, is told each run's result (the metrics).
	Ran func(analytics.RollupResult)
}

// AnalyticsArgs are an analytics job's arguments: none for the scheduled runs.
type AnalyticsArgs struct {
	// RebuildFrom also recomputes every bucket with a job that finished since then: a
	// backfill, or new prices applied to the past.
	RebuildFrom *time.Time `json:"rebuildFrom,omitempty"`
}

// Validate refuses a rebuild from the future.
func (a AnalyticsArgs) Validate() error {
	if a.RebuildFrom != nil && a.RebuildFrom.After(time.Now()) {
		return errors.New("rebuildFrom is in the future")
	}
	return nil
}

// Analytics is analytics.process: the finished jobs folded into the usage and cost rollups
// per hour and day (internal/analytics), every 5 minutes and on demand (careeropsctl enqueue
// analytics.process). A run recomputes whole every bucket where a job finished since the
// last run's start less a margin, in one transaction: running again changes nothing.
func Analytics(d AnalyticsDeps) kind.Kind {
	if d.Prices == nil {
		d.Prices = analytics.DefaultPrices()
	}
	k := kind.Kind{
		Spec:        jobstore.Spec{Name: job.KindAnalytics},
		Timeout:     10 * time.Minute,
		Concurrency: 1,
		Retry:       kind.Retry{MaxAttempts: 3, BaseDelay: 30 * time.Second, MaxDelay: 5 * time.Minute},
		Schedules:   []kind.Schedule{{Task: job.KindAnalytics, Cron: analyticsCron}},
	}
	return kind.Define(k, func(ctx context.Context, _ jobstore.Run, a AnalyticsArgs) (analytics.RollupResult, error) {
		if d.Store == nil {
			return analytics.RollupResult{}, errors.New("analytics: no store")
		}
		res, err := d.Store.Rollup(ctx, analytics.RollupOptions{Prices: d.Prices, Margin: d.Margin, Rebuild: a.RebuildFrom})
		if err == nil && d.Ran != nil {
			d.Ran(res)
		}
		return res, err
	})
}
