package kinds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/email"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
)

// EmailDeps are what telling users about their jobs by email needs.
type EmailDeps struct {
	// Store reads users' addresses and choices, the jobs the emails are about, and the
	// emails already sent.
	Store *jobstore.Store
	// Sender sends over SMTP; Renderer writes the mails; Limiter keeps each recipient
	// domain's rate (nil: none).
	Sender interface {
		Send(context.Context, email.Message) error
	}
	Renderer *email.Renderer
	Limiter  *email.DomainLimiter
	// Secret signs the unsubscribe links (JWT_SECRET, which the api verifies them with).
	Secret []byte
	// Timeout bounds one send; Wait is the longest a send waits for its domain's turn.
	Timeout, Wait time.Duration
}

// EmailArgs say what an email tells: the outcome of the job About.
type EmailArgs struct {
	About   string        `json:"about"`
	Outcome email.Outcome `json:"outcome"`
}

// Validate checks the job id and the outcome.
func (a *EmailArgs) Validate() error {
	switch {
	case !job.ValidID(a.About):
		return errors.New("about must be a job id")
	case a.Outcome != email.OutcomeCompleted && a.Outcome != email.OutcomeFailed:
		return fmt.Errorf("outcome must be completed or failed, not %q", job.Clip(string(a.Outcome), 40))
	}
	return nil
}

// EmailResult is what an email job leaves: the mail sent, or why none was.
type EmailResult struct {
	MessageID string `json:"messageId,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	// Skipped says why nothing was sent: "opted_out" (the user unsubscribed since), or
	// "already_sent" (an earlier attempt sent it and recorded it).
	Skipped string `json:"skipped,omitempty"`
}

// ReasonSMTPRejected is the dead-letter reason of an email the SMTP server refused for good.
const ReasonSMTPRejected = "smtp_rejected"

// emailSpec is how the store keeps emails: in the shared jobs table; a sent email's
// delivery is recorded in the transaction that completes its job.
func emailSpec() jobstore.Spec {
	return jobstore.Spec{
		Name:  job.KindEmail,
		Table: jobstore.SharedTable(job.KindEmail),
		Finished: func(ctx context.Context, tx pgx.Tx, jobs []jobstore.Final) error {
			for _, j := range jobs {
				if err := recordDelivery(ctx, tx, j.Run); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// recordDelivery records the email that the completed job r sent.
func recordDelivery(ctx context.Context, tx pgx.Tx, r jobstore.Run) error {
	var res EmailResult
	if r.Status != job.StatusCompleted || json.Unmarshal(r.Result, &res) != nil || res.MessageID == "" {
		return nil
	}
	var a EmailArgs
	if err := json.Unmarshal(r.Args, &a); err != nil {
		return err
	}
	_, err := jobstore.RecordEmailDelivery(ctx, tx, jobstore.EmailDelivery{
		MessageID: res.MessageID, JobID: a.About, Outcome: string(a.Outcome), UserID: r.UserID, Recipient: res.Recipient,
	})
	return err
}

// Email is notifications.email: the mail that tells a user their letter is ready or could not
// be written, sent once per outcome (docs/architecture.md, "Email").
func Email(d EmailDeps) kind.Kind {
	k := kind.Kind{Spec: emailSpec(), Timeout: d.Timeout, Wait: d.Wait,
		Retry: kind.Retry{MaxAttempts: 8, BaseDelay: 10 * time.Second, MaxDelay: 30 * time.Minute}}
	return kind.Define(k, func(ctx context.Context, j jobstore.Run, a EmailArgs) (EmailResult, error) {
		return sendEmail(ctx, d, j, a)
	})
}

func sendEmail(ctx context.Context, d EmailDeps, j jobstore.Run, a EmailArgs) (EmailResult, error) {
	choice, err := d.Store.Notifications(ctx, j.UserID)
	switch {
	case errors.Is(err, jobstore.ErrUnknownUser):
		return EmailResult{Skipped: "opted_out"}, nil
	case err != nil:
		return EmailResult{}, err
	case !choice.Email || choice.Address == nil:
		return EmailResult{Skipped: "opted_out"}, nil
	}
	n := email.Notification{JobID: a.About, To: *choice.Address, Outcome: a.Outcome}
	if n.UnsubscribeToken, err = auth.IssueUnsubscribe(d.Secret, j.UserID, auth.UnsubscribeTTL, time.Now()); err != nil {
		return EmailResult{}, err
	}
	if a.Outcome == email.OutcomeFailed {
		about, err := d.Store.GetAny(ctx, a.About)
		if err != nil && !errors.Is(err, jobstore.ErrNotFound) {
			return EmailResult{}, err
		}
		n.Error = about.Error
	}
	m, err := d.Renderer.Render(n)
	if err != nil {
		return EmailResult{}, kind.Fail(job.ReasonInvalidMessage, err)
	}
	res := EmailResult{MessageID: m.MessageID, Recipient: m.To}
	if _, sent, err := jobstore.EmailDelivered(ctx, d.Store.Pool(), m.MessageID); err != nil || sent {
		return EmailResult{Skipped: "already_sent"}, err
	}
	if wait, err := d.Limiter.Wait(ctx, m.To); err != nil || wait > 0 {
		if err != nil {
			return EmailResult{}, err
		}
		return EmailResult{}, kind.Defer(wait, fmt.Errorf("the domain's send rate: next turn in %s", wait.Round(time.Second)))
	}
	if err := d.Sender.Send(ctx, m); err != nil {
		if permanent, reply := email.Classify(err); permanent {
			return EmailResult{}, kind.Fail(ReasonSMTPRejected, fmt.Errorf("the mail server refused the email: %s", reply))
		}
		return EmailResult{}, err
	}
	return res, nil
}

// NotifyOutcome enqueues, in the transaction that makes cover letters completed or failed,
// the emails that tell their users, for those who asked for email: the cover letters'
// Finished. An email's job id follows from the letter's and the outcome, so an outcome has
// one email.
func NotifyOutcome(ctx context.Context, tx pgx.Tx, jobs []jobstore.Final) error {
	var users []int64
	for _, j := range jobs {
		if j.Status == job.StatusCompleted || j.Status == job.StatusFailed {
			users = append(users, j.UserID)
		}
	}
	if len(users) == 0 {
		return nil
	}
	wants, err := jobstore.EmailRecipients(ctx, tx, users)
	if err != nil || len(wants) == 0 {
		return err
	}
	for _, j := range jobs {
		if _, ok := wants[j.UserID]; !ok || (j.Status != job.StatusCompleted && j.Status != job.StatusFailed) {
			continue
		}
		args, err := json.Marshal(EmailArgs{About: j.ID, Outcome: email.Outcome(j.Status)})
		if err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(j.ID + "/" + string(j.Status)))
		if _, err := jobstore.Enqueue(ctx, tx, emailSpec(), jobstore.NewRun{
			ID: "email-" + hex.EncodeToString(sum[:16]), UserID: j.UserID, Args: args, Headers: j.Headers,
		}); err != nil {
			return err
		}
	}
	return nil
}
