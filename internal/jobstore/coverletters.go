package jobstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
)

// CoverLetterTable is where cover letters are kept: cover_letter_jobs, a table of their own
// (a contract with other services), its arguments and result in columns.
func CoverLetterTable() Table {
	return Table{
		Name:   "cover_letter_jobs",
		Args:   `jsonb_build_object('jobDescription', job_description, 'cvText', cv_text, 'tone', tone)`,
		Result: `CASE WHEN cover_letter IS NOT NULL THEN jsonb_build_object('coverLetter', cover_letter, 'promptTokens', prompt_tokens, 'completionTokens', completion_tokens, 'model', model) END`,
		Insert: `INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, traceparent)
			SELECT $1, $2, $3::jsonb->>'jobDescription', $3::jsonb->>'cvText', coalesce($3::jsonb->>'tone', 'professional'), nullif($4, '')
			WHERE $5::text IS NOT NULL
			ON CONFLICT (job_id) DO NOTHING`,
		Store: `cover_letter = {result}->>'coverLetter', prompt_tokens = ({result}->>'promptTokens')::int,
			completion_tokens = ({result}->>'completionTokens')::int, model = {result}->>'model'`,
	}
}

// CoverLetterResult is what a cover-letter job leaves: the letter and what it cost.
type CoverLetterResult struct {
	CoverLetter      string `json:"coverLetter"`
	PromptTokens     int    `json:"promptTokens"`
	CompletionTokens int    `json:"completionTokens"`
	Model            string `json:"model"`
}

// CoverLetters is the cover-letter kind as the store keeps it: jobs in cover_letter_jobs,
// those other services ask for within the user's jobs-per-minute limit, every final status
// announced on cover-letter.completed, plus whatever more announces finished adds.
func CoverLetters(l Limits, finished func(ctx context.Context, tx pgx.Tx, jobs []Final) error) Spec {
	return Spec{
		Name:  job.QueueGenerate,
		Table: CoverLetterTable(),
		Admit: func(ctx context.Context, tx pgx.Tx, userID int64) error {
			return checkLimits(ctx, tx, userID, Limits{JobsPerMinute: l.JobsPerMinute})
		},
		Finished: func(ctx context.Context, tx pgx.Tx, jobs []Final) error {
			if err := announceCoverLetters(ctx, tx, jobs); err != nil {
				return err
			}
			if finished == nil {
				return nil
			}
			return finished(ctx, tx, jobs)
		},
	}
}

// announceCoverLetters writes the jobs' final-result messages to the outbox.
func announceCoverLetters(ctx context.Context, tx pgx.Tx, jobs []Final) error {
	msgs := make([]broker.Message, len(jobs))
	for i, f := range jobs {
		r := f.Run
		msg := job.CompletedMessage{JobID: r.ID, UserID: r.UserID, Status: r.Status, Error: r.Error}
		if r.CompletedAt != nil {
			msg.CompletedAt = *r.CompletedAt
		}
		if r.Status == job.StatusCompleted && len(r.Result) > 0 {
			var res CoverLetterResult
			if err := json.Unmarshal(r.Result, &res); err != nil {
				return fmt.Errorf("decode the letter: %w", err)
			}
			msg.CoverLetter = res.CoverLetter
		}
		body, err := json.Marshal(msg)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		msgs[i] = broker.Message{
			RoutingKey: job.QueueCompleted,
			MessageID:  r.ID + "/" + string(r.Status),
			Headers:    withHeaders(f.Headers, job.HeaderJobID, r.ID),
			Body:       body,
		}
	}
	return outbox.InsertMany(ctx, tx, msgs, time.Time{})
}

// coverLetterMessage is a new cover letter's message for its queue: the contract's
// cover-letter.generate body (the envelope and the kind's arguments, as job.EncodeMessage
// would write them), encoded in one pass on the api's create path.
func coverLetterMessage(j Job, headers map[string]string) (broker.Message, error) {
	body, err := json.Marshal(job.GenerateMessage{JobID: j.ID, UserID: j.UserID, JobDescription: j.JobDescription,
		CVText: j.CVText, Tone: j.Tone, CreatedAt: j.CreatedAt, RetryCount: j.Attempts})
	if err != nil {
		return broker.Message{}, fmt.Errorf("encode message: %w", err)
	}
	return outboxMessage(job.QueueGenerate, j.ID, j.Attempts, body, headers, time.Time{}), nil
}

// Cancel cancels a user's pending or processing cover letter (see Runs.Cancel) and returns it.
func (s *Store) Cancel(ctx context.Context, userID int64, jobID string, headers map[string]string) (Job, error) {
	if _, err := s.Runs(CoverLetters(Limits{}, nil)).Cancel(ctx, userID, jobID, headers); err != nil {
		return Job{}, err
	}
	return s.Get(ctx, userID, jobID)
}
