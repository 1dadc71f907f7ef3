package kinds_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/email"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kind"
	"github.com/careerops/jobs/internal/kinds"
	"github.com/careerops/jobs/internal/testkit"
)

var testSecret = []byte("an email test secret of 32 bytes+")

// emailStack runs the email kind against a test SMTP server, with one user who asked for
// email.
type emailStack struct {
	*stack
	smtp *testkit.SMTPServer
	user int64
}

func runEmail(t *testing.T) *emailStack {
	t.Helper()
	t.Parallel()
	srv := testkit.StartSMTPServer(t, testkit.SMTPOptions{})
	cfg := email.DefaultConfig()
	cfg.Host, cfg.Port, cfg.TLS, cfg.Timeout = srv.Host, srv.Port, email.TLSNone, 2*time.Second
	cfg.PublicBaseURL = "https://careerops.example"
	sender, err := email.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := email.NewRenderer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := run(t, func(s *jobstore.Store) kind.Kind {
		return kinds.Email(kinds.EmailDeps{Store: s, Sender: sender, Renderer: renderer, Secret: testSecret, Timeout: 5 * time.Second})
	})
	es := &emailStack{stack: st, smtp: srv}
	ctx := context.Background()
	if es.user, err = st.store.AddUser(ctx, "ada@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.store.SetEmailNotifications(ctx, es.user, true); err != nil {
		t.Fatal(err)
	}
	return es
}

// outcome makes the user's cover letter id final with status, as the cover-letter worker
// does: NotifyOutcome in the outcome's transaction. It returns the email job's id.
func (es *emailStack) outcome(t *testing.T, id string, status job.Status) string {
	t.Helper()
	ctx := context.Background()
	r := jobstore.Run{ID: id, UserID: es.user, Status: status}
	if err := pgx.BeginFunc(ctx, es.store.Pool(), func(tx pgx.Tx) error { return kinds.NotifyOutcome(ctx, tx, []jobstore.Final{{Run: r}}) }); err != nil {
		t.Fatal(err)
	}
	es.store.Pool().Exec(ctx, `SELECT pg_notify('outbox_messages', '')`) //nolint:errcheck // a wake-up only
	var emailID string
	if err := es.store.Pool().QueryRow(ctx, `SELECT job_id FROM jobs WHERE args->>'about' = $1 AND args->>'outcome' = $2`, id, status).Scan(&emailID); err != nil {
		t.Fatalf("no email job for %s %s: %v", id, status, err)
	}
	return emailID
}

// One outcome, one email: sent with its deterministic Message-ID and a working unsubscribe
// link, recorded in email_deliveries; the same outcome announced again enqueues nothing new.
func TestEmailTellsTheOutcomeOnce(t *testing.T) {
	es := runEmail(t)
	id := es.outcome(t, "letter-1", job.StatusCompleted)
	if again := es.outcome(t, "letter-1", job.StatusCompleted); again != id {
		t.Fatalf("a second announcement made email job %s besides %s", again, id)
	}
	if j := es.final(t, id); j.Status != job.StatusCompleted {
		t.Fatalf("email job = %+v", j)
	}
	msgs := es.smtp.WaitMessages(t, 1, 10*time.Second)
	m := msgs[0]
	if m.MessageID != email.MessageID("letter-1", email.OutcomeCompleted, "careerops.invalid") ||
		!strings.Contains(m.Subject, "ready") || !strings.Contains(m.HTML, "/?job=letter-1") {
		t.Fatalf("message id %q subject %q html %q", m.MessageID, m.Subject, m.HTML)
	}
	unsub := m.Header.Get("List-Unsubscribe")
	u, err := url.Parse(strings.Trim(unsub, "<>"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := auth.NewVerifier(testSecret).VerifyUnsubscribe(u.Query().Get("token")); err != nil || uid != es.user {
		t.Fatalf("unsubscribe token of %q: user %d, %v", unsub, uid, err)
	}
	var n int
	if err := es.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM email_deliveries WHERE job_id = 'letter-1'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d deliveries recorded, %v", n, err)
	}
	time.Sleep(300 * time.Millisecond) // room for a wrong second send
	if got := len(es.smtp.Messages()); got != 1 {
		t.Fatalf("%d emails sent, want 1", got)
	}
}

// SMTP 4xx is retried until the server takes the mail; 5xx fails the job at once, dead-lettered
// with the server's reply; a user who opted out meanwhile gets nothing; an email recorded as
// sent (its job's commit was lost after the send) is not sent again.
func TestEmailFailuresAndSkips(t *testing.T) {
	es := runEmail(t)
	es.smtp.Fail(2, 421, "4.3.0 try again later")
	if j := es.final(t, es.outcome(t, "letter-421", job.StatusFailed)); j.Status != job.StatusCompleted || j.Attempts != 3 {
		t.Fatalf("after two 421s = %+v, want completed on the third attempt", j)
	}
	es.smtp.Fail(1, 550, "5.1.1 no such user here")
	j := es.final(t, es.outcome(t, "letter-550", job.StatusCompleted))
	if j.Status != job.StatusFailed || j.Attempts != 1 || !strings.Contains(j.Error, "no such user") {
		t.Fatalf("after a 550 = %+v", j)
	}
	dead := testkit.GetMessage(t, es.ch, job.DLQ(job.KindEmail), 10*time.Second)
	if dead.Headers[job.HeaderDeathReason] != kinds.ReasonSMTPRejected {
		t.Fatalf("dead letter headers %v", dead.Headers)
	}

	ctx := context.Background()
	if _, err := jobstore.RecordEmailDelivery(ctx, es.store.Pool(), jobstore.EmailDelivery{
		MessageID: email.MessageID("letter-sent", email.OutcomeCompleted, "careerops.invalid"), JobID: "letter-sent",
		Outcome: "completed", UserID: es.user, Recipient: "ada@example.org",
	}); err != nil {
		t.Fatal(err)
	}
	if j := es.final(t, es.outcome(t, "letter-sent", job.StatusCompleted)); !strings.Contains(string(j.Result), "already_sent") {
		t.Fatalf("a recorded email's job = %+v (%s)", j, j.Result)
	}
	id := es.outcome(t, "letter-off", job.StatusCompleted)
	if _, err := es.store.SetEmailNotifications(ctx, es.user, false); err != nil {
		t.Fatal(err)
	}
	if j := es.final(t, id); j.Status == job.StatusCompleted && !strings.Contains(string(j.Result), "opted_out") {
		// the worker may have sent it before the opt-out: then it was sent, once
		if len(es.smtp.Messages()) != 2 {
			t.Fatalf("opted out: %+v (%s), %d sent", j, j.Result, len(es.smtp.Messages()))
		}
	}
	if got := len(es.smtp.Messages()); got > 2 {
		t.Fatalf("%d emails sent, want the 421 one and at most the opted-out one", got)
	}
}
