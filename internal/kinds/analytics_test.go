package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/careerops/jobs/internal/analytics"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/testkit"
)

// analytics.process rolls the finished jobs up, tells Ran, and refuses arguments it does not
// know or a rebuild from the future as invalid (dead-lettered, not retried).
func TestAnalyticsRollsUp(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	fillJobs(t, pool, 100) // finished jobs over 100 days: 90 of each table
	var ran []analytics.RollupResult
	k := Analytics(AnalyticsDeps{Store: analytics.NewStore(pool), Ran: func(r analytics.RollupResult) { ran = append(ran, r) }})
	ctx := context.Background()
	out, err := k.Handle(ctx, jobstore.Run{Args: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	var res analytics.RollupResult
	if err := json.Unmarshal(out, &res); err != nil || res.Hours == 0 || res.Rows == 0 || len(ran) != 1 {
		t.Fatalf("result %s (%v), ran %d times", out, err, len(ran))
	}
	if n := countRows(t, pool, `SELECT sum(jobs) FROM usage_rollups WHERE grain = 'day' AND user_id = 0 AND model = '*'`); n != 180 {
		t.Fatalf("%d jobs rolled up, want 180", n)
	}
	for _, args := range []string{`{"nope": 1}`, `{"rebuildFrom": "2999-01-01T00:00:00Z"}`} {
		if _, err := k.Decode(json.RawMessage(args)); !errors.Is(err, job.ErrInvalidMessage) {
			t.Errorf("Decode(%s) = %v, want invalid", args, err)
		}
	}
	if len(k.Schedules) != 1 || k.Schedules[0].Task != job.KindAnalytics {
		t.Errorf("schedules %+v", k.Schedules)
	}
}
