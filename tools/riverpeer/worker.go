package riverpeer

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/careerops/jobs/internal/llm"
	"github.com/careerops/jobs/internal/prompt"
)

// letterWorker asks the LLM for the letter and stores it; River marks the job completed (its
// batched completer) when Work returns nil, retries it on an error, cancels it on JobCancel.
type letterWorker struct {
	river.WorkerDefaults[Args]
	pool *pgxpool.Pool
	llm  llm.Streamer
}

// Work streams the letter, as our worker does, and stores it once: a retry after the letter
// was stored does not store it again.
func (w *letterWorker) Work(ctx context.Context, j *river.Job[Args]) error {
	p := prompt.Build(j.Args.JobDescription, j.Args.CVText, j.Args.Tone)
	out, err := w.llm.Stream(ctx, p.System, p.User, func(string) {})
	var llmErr *llm.Error
	switch {
	case errors.As(err, &llmErr) && !llmErr.Temporary:
		return river.JobCancel(err)
	case err != nil:
		return err
	}
	_, err = w.pool.Exec(ctx, `INSERT INTO cover_letters (job_id, user_id, letter, prompt_tokens, completion_tokens)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING`,
		j.ID, j.Args.UserID, out.Text, out.PromptTokens, out.CompletionTokens)
	return err
}

// NewWorker returns a River client that works cover-letter jobs on pool, maxWorkers at a time
// in the default queue, with River's other settings left at their defaults. Start it.
func NewWorker(pool *pgxpool.Pool, model llm.Streamer, maxWorkers int, log *slog.Logger) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &letterWorker{pool: pool, llm: model}); err != nil {
		return nil, err
	}
	return newClient(pool, &river.Config{
		Logger:  log,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers: workers,
	})
}
