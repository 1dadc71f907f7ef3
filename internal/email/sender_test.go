package email

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/testkit"
)

// senderBundle is what a Sender under test sends to.
type senderBundle struct {
	server *testkit.SMTPServer
	msg    Message
}

// setupSender starts a test SMTP server with opts and returns a Sender to it in mode, with
// cfg's other settings changed by change (nil: none), and a rendered message.
func setupSender(t *testing.T, opts testkit.SMTPOptions, mode TLSMode, change func(*Config)) (*Sender, *senderBundle) {
	t.Helper()
	srv := testkit.StartSMTPServer(t, opts)
	cfg := DefaultConfig()
	cfg.Host, cfg.Port, cfg.TLS, cfg.Timeout = srv.Host, srv.Port, mode, 5*time.Second
	cfg.From = "CareerOps <no-reply@mail.example.com>"
	if change != nil {
		change(&cfg)
	}
	s, err := NewSender(cfg, WithTLSConfig(srv.ClientTLSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRenderer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := r.Render(Notification{JobID: "job-" + testkit.RandomHex(4), To: "ada@example.org", Outcome: OutcomeFailed,
		Error: "the model refused <b>this</b>", UnsubscribeToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	return s, &senderBundle{server: srv, msg: msg}
}

func TestSenderDelivers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     testkit.SMTPOptions
		mode     TLSMode
		user     string
		password string
		wantTLS  bool
	}{
		{name: "plain", mode: TLSNone},
		{name: "STARTTLS", mode: TLSStartTLS, wantTLS: true},
		{name: "implicit TLS", opts: testkit.SMTPOptions{ImplicitTLS: true}, mode: TLSImplicit, wantTLS: true},
		{name: "STARTTLS and AUTH PLAIN", opts: testkit.SMTPOptions{Username: "mailer", Password: "s3cret"}, mode: TLSStartTLS,
			user: "mailer", password: "s3cret", wantTLS: true},
		{name: "implicit TLS and AUTH PLAIN", opts: testkit.SMTPOptions{ImplicitTLS: true, Username: "mailer", Password: "s3cret"}, mode: TLSImplicit,
			user: "mailer", password: "s3cret", wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, b := setupSender(t, tt.opts, tt.mode, func(c *Config) { c.Username, c.Password = tt.user, tt.password })
			if err := s.Send(context.Background(), b.msg); err != nil {
				t.Fatal(err)
			}
			got := b.server.WaitMessages(t, 1, 5*time.Second)[0]
			if got.TLS != tt.wantTLS || got.User != tt.user {
				t.Errorf("TLS %v, user %q; want %v, %q", got.TLS, got.User, tt.wantTLS, tt.user)
			}
			if got.From != "no-reply@mail.example.com" || len(got.To) != 1 || got.To[0] != "ada@example.org" {
				t.Errorf("envelope from %q to %q", got.From, got.To)
			}
			if got.MessageID != b.msg.MessageID || got.Subject != b.msg.Subject {
				t.Errorf("Message-ID %q, Subject %q; want %q, %q", got.MessageID, got.Subject, b.msg.MessageID, b.msg.Subject)
			}
			if h := got.Header.Get("List-Unsubscribe"); h != b.msg.ListUnsubscribe {
				t.Errorf("List-Unsubscribe %q, want %q", h, b.msg.ListUnsubscribe)
			}
			if h := got.Header.Get("List-Unsubscribe-Post"); h != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post %q", h)
			}
			if !strings.Contains(got.Text, "the model refused <b>this</b>") || !strings.Contains(got.HTML, "the model refused &lt;b&gt;this&lt;/b&gt;") {
				t.Errorf("the bodies did not arrive whole:\ntext: %s\nhtml: %s", got.Text, got.HTML)
			}
		})
	}
}

func TestSenderFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      int
		text      string
		permanent bool
	}{
		{"421 is transient", 421, "Service not available, closing channel", false},
		{"450 is transient", 450, "Mailbox busy, try later", false},
		{"550 is permanent", 550, "No such user here", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, b := setupSender(t, testkit.SMTPOptions{}, TLSStartTLS, nil)
			b.server.Fail(1, tt.code, tt.text)
			err := s.Send(context.Background(), b.msg)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Send = %v, want an *Error", err)
			}
			if e.Permanent != tt.permanent || !strings.Contains(e.Reply, tt.text) || !strings.HasPrefix(e.Reply, strconv.Itoa(tt.code)) {
				t.Errorf("permanent %v, reply %q; want %v and the server's %q", e.Permanent, e.Reply, tt.permanent, tt.text)
			}
			if testing.Verbose() {
				t.Logf("reply: %q", e.Reply)
			}
			if permanent, reply := Classify(err); permanent != tt.permanent || reply != e.Reply {
				t.Errorf("Classify = %v, %q", permanent, reply)
			}
			// The failure was for one message: the next goes through.
			if err := s.Send(context.Background(), b.msg); err != nil {
				t.Fatalf("the next send: %v", err)
			}
			if n := len(b.server.Messages()); n != 1 {
				t.Errorf("the server holds %d messages, want 1", n)
			}
		})
	}
}

func TestSenderWrongPasswordIsPermanent(t *testing.T) {
	t.Parallel()
	s, b := setupSender(t, testkit.SMTPOptions{Username: "mailer", Password: "right"}, TLSStartTLS,
		func(c *Config) { c.Username, c.Password = "mailer", "wrong" })
	err := s.Send(context.Background(), b.msg)
	if permanent, reply := Classify(err); !permanent || !strings.HasPrefix(reply, "535") {
		t.Errorf("Classify(%v) = %v, %q; want permanent, 535", err, permanent, reply)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error holds the password: %v", err)
	}
}

func TestSenderTimesOutOnASlowServer(t *testing.T) {
	t.Parallel()
	s, b := setupSender(t, testkit.SMTPOptions{}, TLSNone, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	b.server.SetDelay(2 * time.Second)
	start := time.Now()
	err := s.Send(context.Background(), b.msg)
	took := time.Since(start)
	if permanent, reply := Classify(err); err == nil || permanent {
		t.Fatalf("Send = %v (%q), want a transient failure", err, reply)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("the send took %s with a 300ms timeout", took)
	}
}

func TestSenderTLSNeedsATrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := testkit.StartSMTPServer(t, testkit.SMTPOptions{})
	cfg := DefaultConfig()
	cfg.Host, cfg.Port, cfg.Timeout = srv.Host, srv.Port, 5*time.Second
	s, err := NewSender(cfg) // the system's roots: the test certificate is not among them
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRenderer(cfg)
	msg, err := r.Render(Notification{JobID: "j", To: "a@example.org", Outcome: OutcomeCompleted, UnsubscribeToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); err == nil {
		t.Fatal("sent over STARTTLS to an untrusted certificate")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("the server got %d messages", n)
	}
}

// TestSenderOutageUntilToldOtherwise: a server that answers 421 to everything (an outage)
// fails every send transiently and records nothing; once it recovers, the sends go through.
func TestSenderOutageUntilToldOtherwise(t *testing.T) {
	t.Parallel()
	s, b := setupSender(t, testkit.SMTPOptions{}, TLSStartTLS, nil)
	b.server.Fail(-1, 421, "4.3.2 System not accepting network messages")
	for range 3 {
		if permanent, reply := Classify(s.Send(context.Background(), b.msg)); permanent || !strings.HasPrefix(reply, "421") {
			t.Fatalf("during the outage: permanent %v, reply %q", permanent, reply)
		}
	}
	if n := len(b.server.Messages()); n != 0 {
		t.Fatalf("the server recorded %d messages during the outage", n)
	}
	b.server.FailNone()
	if err := s.Send(context.Background(), b.msg); err != nil {
		t.Fatal(err)
	}
	if got := b.server.WaitMessages(t, 1, 5*time.Second); got[0].MessageID != b.msg.MessageID {
		t.Errorf("Message-ID %q, want %q", got[0].MessageID, b.msg.MessageID)
	}
}
