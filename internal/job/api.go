package job

import "time"

// The bodies of the HTTP API (docs/api.md), in one place: internal/httpapi writes them and
// internal/apiclient reads them, so the two cannot drift apart.

// CreateRequest is the body of POST /api/cover-letter.
type CreateRequest struct {
	JobDescription string `json:"jobDescription"`
	CVText         string `json:"cvText"`
	// Tone defaults to professional.
	Tone Tone `json:"tone,omitempty"`
}

// Accepted answers POST /api/cover-letter: 202 for a new job, 200 for an idempotent replay.
type Accepted struct {
	JobID  string `json:"jobId"`
	Status Status `json:"status"`
}

// View is a job as the API shows it: GET .../status/:jobId, DELETE .../:jobId and the list.
type View struct {
	JobID       string     `json:"jobId"`
	Status      Status     `json:"status"`
	Tone        Tone       `json:"tone"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
	CoverLetter string     `json:"coverLetter,omitempty"`
	Error       string     `json:"error,omitempty"`
	// TraceID finds the job's trace in Jaeger.
	TraceID string `json:"traceId,omitempty"`
}

// Page is one page of GET /api/cover-letter/jobs, newest first.
type Page struct {
	Jobs []View `json:"jobs"`
	// NextCursor asks for the next page (?cursor=); "" on the last.
	NextCursor string `json:"nextCursor,omitempty"`
}

// StreamToken answers POST /api/cover-letter/:jobId/stream-token.
type StreamToken struct {
	ExpiresAt time.Time `json:"expiresAt"`
	Token     string    `json:"token"`
}

// DevTokenRequest is the body of POST /dev/token; every field is optional.
type DevTokenRequest struct {
	Email string `json:"email"`
	Admin bool   `json:"admin"`
}

// DevToken answers POST /dev/token.
type DevToken struct {
	Email  string `json:"email"`
	Token  string `json:"token"`
	UserID int64  `json:"userId"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a stable code and a message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// OpsOverview is the body of GET /api/ops/overview.
type OpsOverview struct {
	Queues       []QueueView    `json:"queues"`
	JobsByStatus map[Status]int `json:"jobsByStatus"`
	// JobsByStatusEstimated names the statuses whose counts are estimates (a large table's
	// completed and cancelled jobs); the others are counted.
	JobsByStatusEstimated []Status `json:"jobsByStatusEstimated,omitempty"`
	// JobsByKind counts the jobs of the other kinds (not cover letters) by kind and status.
	JobsByKind     map[string]map[Status]int `json:"jobsByKind"`
	RecentFailures []FailureView             `json:"recentFailures"`
	DLQ            []DeadLetterView          `json:"dlq"`
	// Outbox is what waits to be published, and what the relays gave up on.
	Outbox OutboxView `json:"outbox"`
	// Schedules are the scheduled tasks, by name.
	Schedules []ScheduleView `json:"schedules"`
	// JaegerURL is the Jaeger UI a trace id is looked up in: <jaegerUrl>/trace/<traceId>.
	JaegerURL string `json:"jaegerUrl,omitempty"`
}

// OutboxView is the outbox's backlog: messages waiting to be published, the age of the
// oldest due one, and messages parked for an operator (careeropsctl outbox replay).
type OutboxView struct {
	Waiting          int64   `json:"waiting"`
	Parked           int64   `json:"parked"`
	OldestDueSeconds float64 `json:"oldestDueSeconds"`
}

// ScheduleView is a scheduled task: when it runs, and how it last ran.
type ScheduleView struct {
	Task string `json:"task"`
	Kind string `json:"kind"`
	// Cron is its schedule, in UTC (PostgreSQL's clock).
	Cron    string     `json:"cron"`
	NextRun *time.Time `json:"nextRun,omitempty"`
	// LastRun is its latest slot (none yet: absent); LastOutcome is "skipped" (the job
	// before was still running), the status of the slot's job, or "removed" (retention
	// deleted it); LastJobID is the slot's job, or the one that made it skip.
	LastRun     *time.Time `json:"lastRun,omitempty"`
	LastOutcome string     `json:"lastOutcome,omitempty"`
	LastJobID   string     `json:"lastJobId,omitempty"`
}

// QueueView is a queue's depth and consumers.
type QueueView struct {
	Name      string `json:"name"`
	Messages  int    `json:"messages"`
	Consumers int    `json:"consumers"`
}

// FailureView is a recently failed job.
type FailureView struct {
	JobID     string    `json:"jobId"`
	UserID    int64     `json:"userId"`
	Error     string    `json:"error"`
	UpdatedAt time.Time `json:"updatedAt"`
	TraceID   string    `json:"traceId,omitempty"`
}

// DeadLetterView is a message in the dead-letter queue.
type DeadLetterView struct {
	JobID     string `json:"jobId,omitempty"`
	MessageID string `json:"messageId"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
}

// RequeueRequest is the body of POST /api/ops/dlq/requeue: one job, or all.
type RequeueRequest struct {
	JobID *string `json:"jobId"`
	All   *bool   `json:"all"`
}

// RequeueResult answers POST /api/ops/dlq/requeue.
type RequeueResult struct {
	Requeued int `json:"requeued"`
	Skipped  int `json:"skipped"`
	// Interrupted: the server stopped before it was done; asking again does the rest.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Notifications answers GET and PATCH /api/me/notifications: whether the user is emailed
// when a job of theirs completes or fails, and where (null: no address on file).
type Notifications struct {
	Email   bool    `json:"email"`
	Address *string `json:"address"`
}

// NotificationsUpdate is the body of PATCH /api/me/notifications; email is required.
type NotificationsUpdate struct {
	Email *bool `json:"email"`
}

// Usage is the body of GET /api/ops/usage: the usage rollups of a window, one row per bucket
// (hour or UTC day), kind and outcome, and per user and model when groupBy asks.
type Usage struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Grain string    `json:"grain"`
	// ByUser and ByModel say whether the rows are split by user and by model.
	ByUser  bool `json:"byUser"`
	ByModel bool `json:"byModel"`
	// SeenUntil: jobs that finished before it are in the rollups (absent: never rolled up).
	SeenUntil *time.Time  `json:"seenUntil,omitempty"`
	Rows      []UsageRow  `json:"rows"`
	Totals    UsageTotals `json:"totals"`
}

// UsageTotals are counts of finished jobs and what they used.
type UsageTotals struct {
	Jobs             int64 `json:"jobs"`
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	// CostMicros is the estimated cost (LLM_PRICES) in millionths of the currency unit.
	CostMicros int64 `json:"costMicros"`
	// Retries are attempts after each job's first; DeadLetters the jobs that failed for good.
	Retries     int64 `json:"retries"`
	DeadLetters int64 `json:"deadLetters"`
}

// UsageRow is one bucket's finished jobs of one kind and outcome (and user, and model).
type UsageRow struct {
	Bucket  time.Time `json:"bucket"`
	UserID  *int64    `json:"userId,omitempty"`
	Kind    string    `json:"kind"`
	Model   *string   `json:"model,omitempty"` // "" for jobs that call no LLM
	Outcome Status    `json:"outcome"`
	UsageTotals
	// P50Ms and P95Ms are the median and 95th percentile of request to end, in milliseconds.
	P50Ms float64 `json:"p50Ms"`
	P95Ms float64 `json:"p95Ms"`
}

// MyUsage is the body of GET /api/me/usage: the user's own usage by UTC day, and today's
// LLM tokens against their daily budget.
type MyUsage struct {
	Days      []MyUsageDay `json:"days"`
	Today     TokenBudget  `json:"today"`
	SeenUntil *time.Time   `json:"seenUntil,omitempty"`
}

// MyUsageDay is one UTC day of a user's finished jobs and their tokens (the cost estimate
// and retries are the operators').
type MyUsageDay struct {
	Day              time.Time `json:"day"`
	Jobs             int64     `json:"jobs"`
	Failed           int64     `json:"failed"`
	PromptTokens     int64     `json:"promptTokens"`
	CompletionTokens int64     `json:"completionTokens"`
}

// TokenBudget is a user's LLM tokens of the day (counted live, not from the rollups) against
// USER_TOKENS_PER_DAY.
type TokenBudget struct {
	Tokens int64 `json:"tokens"`
	// Budget is USER_TOKENS_PER_DAY (0: no limit); Remaining is what is left (absent: no limit).
	Budget    int64     `json:"budget"`
	Remaining *int64    `json:"remaining,omitempty"`
	ResetsAt  time.Time `json:"resetsAt"`
}

// Export is an export of a user's data: POST /api/me/export (202 for a new one, 200 for the
// one still being written) and GET /api/me/exports/:id.
type Export struct {
	ID string `json:"id"`
	// Status is pending or processing while it is written, then ready, or failed.
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is when it is removed: 24 hours after it was asked for.
	ExpiresAt time.Time `json:"expiresAt"`
	// The rest once it is ready.
	CoverLetters int          `json:"coverLetters,omitempty"`
	Jobs         int          `json:"jobs,omitempty"`
	Downloads    *ExportFiles `json:"downloads,omitempty"`
	Error        string       `json:"error,omitempty"`
	Sizes        *ExportSizes `json:"sizes,omitempty"`
}

// ExportFiles are the download URLs of a ready export.
type ExportFiles struct {
	JSON string `json:"json"`
	ZIP  string `json:"zip"`
}

// ExportSizes are the sizes of a ready export's files, in bytes.
type ExportSizes struct {
	JSON int `json:"json"`
	ZIP  int `json:"zip"`
}

// Export statuses beside the job statuses it goes through first.
const (
	ExportReady  = "ready"
	ExportFailed = "failed"
)
