package testkit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/job"
)

// GenerateBody is a valid cover-letter.generate body for jobID and userID.
func GenerateBody(t testing.TB, jobID string, userID int64) []byte {
	t.Helper()
	body, err := json.Marshal(job.GenerateMessage{JobID: jobID, UserID: userID, JobDescription: "Go developer",
		CVText: "Ten years of Go.", Tone: job.ToneProfessional, CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// InsertJob creates a user and a job row in status (3 attempts, an error), directly in SQL.
func InsertJob(t testing.TB, pool *pgxpool.Pool, jobID string, status job.Status) {
	t.Helper()
	ctx := context.Background()
	var userID int64
	if err := pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, jobID+"@example.com").Scan(&userID); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, attempts, error_message, completed_at)
		VALUES ($1, $2, $3, 'Go developer', 'Ten years of Go.', 3, 'LLM kept failing', now())`,
		jobID, userID, status); err != nil {
		t.Fatalf("insert job: %v", err)
	}
}

// QueueLen waits up to within (messages return to a queue asynchronously when a channel
// closes) until queue holds want ready messages, and returns the count it saw last.
func QueueLen(t testing.TB, ch *amqp.Channel, queue string, want int, within time.Duration) int {
	t.Helper()
	var n int
	_ = WaitUntil(context.Background(), within, 50*time.Millisecond, func() bool {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatalf("inspect %s: %v", queue, err)
		}
		n = q.Messages
		return n == want
	}) // the caller compares the count it gets
	return n
}

// GetMessage takes one message off queue (acknowledged), waiting up to within for it.
func GetMessage(t testing.TB, ch *amqp.Channel, queue string, within time.Duration) amqp.Delivery {
	t.Helper()
	var m amqp.Delivery
	Eventually(t, within, func() bool {
		var ok bool
		var err error
		if m, ok, err = ch.Get(queue, true); err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		return ok
	}, "a message on %s", queue)
	return m
}

// InsertLetter adds a cover letter of userID's in status, directly in SQL: with letter as its
// text when completed, open (pending or processing) otherwise.
func InsertLetter(t testing.TB, pool *pgxpool.Pool, userID int64, jobID string, status job.Status, letter string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, cover_letter, model,
			prompt_tokens, completion_tokens, attempts, completed_at)
		VALUES ($1, $2, $3, 'Go developer at ' || $1, 'CV of user ' || $2::bigint, nullif($4, ''), 'fake-gpt', 120, 80, 1,
			CASE WHEN $3 IN ('completed', 'failed', 'cancelled') THEN now() END)`,
		jobID, userID, status, letter); err != nil {
		t.Fatalf("insert letter: %v", err)
	}
}
