package email

import (
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/job"
)

func testRenderer(t *testing.T) *Renderer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.From = "CareerOps <no-reply@mail.example.com>"
	cfg.PublicBaseURL = "https://jobs.example.com/"
	r, err := NewRenderer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRender(t *testing.T) {
	t.Parallel()
	r := testRenderer(t)
	hostile := "<script>alert(1)</script>\r\nBcc: victim@example.com\x1b[31m \u202Eevil & \"quoted\""
	tests := []struct {
		name                string
		n                   Notification
		subject, messageID  string
		textHas, htmlHas    []string
		textLacks, htmlLack []string
	}{
		{
			name:      "completed",
			n:         Notification{JobID: "0193a1b2-c3d4", To: "Ada <ada@example.org>", Outcome: OutcomeCompleted, UnsubscribeToken: "tok.en_1"},
			subject:   "Your cover letter is ready",
			messageID: "<0193a1b2-c3d4.completed@mail.example.com>",
			textHas:   []string{"Your cover letter is ready", "https://jobs.example.com/?job=0193a1b2-c3d4", "https://jobs.example.com/unsubscribe?token=tok.en_1"},
			htmlHas:   []string{`href="https://jobs.example.com/?job=0193a1b2-c3d4"`, `href="https://jobs.example.com/unsubscribe?token=tok.en_1"`, "Open my letter"},
			textLacks: []string{"What went wrong"},
			htmlLack:  []string{"What went wrong"},
		},
		{
			name:      "failed with a hostile error",
			n:         Notification{JobID: "job-2", To: "ada@example.org", Outcome: OutcomeFailed, Error: hostile, UnsubscribeToken: "t"},
			subject:   "Your cover letter could not be written",
			messageID: "<job-2.failed@mail.example.com>",
			textHas:   []string{"could not be written", "<script>alert(1)</script>", "evil & \"quoted\""},
			htmlHas:   []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "evil &amp; &#34;quoted&#34;"},
			textLacks: []string{"\r", "\x1b", "\u202E"},
			htmlLack:  []string{"<script>", "\x1b", "\u202E"},
		},
		{
			name:      "failed without a reason",
			n:         Notification{JobID: "job-3", To: "ada@example.org", Outcome: OutcomeFailed, UnsubscribeToken: "t"},
			subject:   "Your cover letter could not be written",
			messageID: "<job-3.failed@mail.example.com>",
			textHas:   []string{"The service did not say why."},
			htmlHas:   []string{"The service did not say why."},
		},
		{
			name:      "a job id a Message-ID cannot hold, and a token to escape",
			n:         Notification{JobID: "ext:42", To: "ada@example.org", Outcome: OutcomeCompleted, UnsubscribeToken: "a+b/c="},
			subject:   "Your cover letter is ready",
			messageID: "<x6578743a3432.completed@mail.example.com>",
			textHas:   []string{"?job=ext%3A42", "?token=a%2Bb%2Fc%3D"},
			htmlHas:   []string{"?job=ext%3A42", "?token=a%2Bb%2Fc%3D", "Job ext:42"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := r.Render(tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject || m.MessageID != tt.messageID {
				t.Errorf("subject %q, Message-ID %q; want %q, %q", m.Subject, m.MessageID, tt.subject, tt.messageID)
			}
			if m.From != `"CareerOps" <no-reply@mail.example.com>` || m.To != "ada@example.org" {
				t.Errorf("from %q to %q", m.From, m.To)
			}
			if m.ListUnsubscribe != "<"+m.UnsubscribeURL+">" || !strings.HasPrefix(m.UnsubscribeURL, "https://jobs.example.com/unsubscribe?token=") {
				t.Errorf("List-Unsubscribe %q, link %q", m.ListUnsubscribe, m.UnsubscribeURL)
			}
			if m.Text == "" || !strings.Contains(m.HTML, "<html") {
				t.Fatalf("a body is missing: text %d bytes, html %q", len(m.Text), m.HTML)
			}
			checkContains(t, "text", m.Text, tt.textHas, tt.textLacks)
			checkContains(t, "html", m.HTML, tt.htmlHas, tt.htmlLack)
			again, err := r.Render(tt.n)
			if err != nil || again.MessageID != m.MessageID || again.Text != m.Text || again.HTML != m.HTML {
				t.Error("rendering twice gave two messages")
			}
		})
	}
}

func checkContains(t *testing.T, part, body string, has, lacks []string) {
	t.Helper()
	for _, s := range has {
		if !strings.Contains(body, s) {
			t.Errorf("the %s body lacks %q:\n%s", part, s, body)
		}
	}
	for _, s := range lacks {
		if strings.Contains(body, s) {
			t.Errorf("the %s body holds %q:\n%s", part, s, body)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	t.Parallel()
	r := testRenderer(t)
	ok := Notification{JobID: "job-1", To: "ada@example.org", Outcome: OutcomeCompleted, UnsubscribeToken: "t"}
	tests := []struct {
		name   string
		change func(*Notification)
	}{
		{"bad job id", func(n *Notification) { n.JobID = "job 1\r\n" }},
		{"unknown outcome", func(n *Notification) { n.Outcome = "cancelled" }},
		{"no recipient", func(n *Notification) { n.To = "" }},
		{"recipient with a header", func(n *Notification) { n.To = "ada@example.org\r\nBcc: x@example.org" }},
		{"no unsubscribe token", func(n *Notification) { n.UnsubscribeToken = "" }},
	}
	for _, tt := range tests {
		n := ok
		tt.change(&n)
		if _, err := r.Render(n); err == nil {
			t.Errorf("%s: rendered", tt.name)
		}
	}
	if _, err := r.Render(ok); err != nil {
		t.Fatalf("the good notification: %v", err)
	}
}

func TestRenderClipsALongError(t *testing.T) {
	t.Parallel()
	m, err := testRenderer(t).Render(Notification{JobID: "j", To: "a@b.example", Outcome: OutcomeFailed,
		Error: strings.Repeat("é", 5000), UnsubscribeToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(m.Text, "é"); n*2 > job.MaxErrorBytes {
		t.Errorf("the text holds %d bytes of the error, want at most %d", n*2, job.MaxErrorBytes)
	}
}
