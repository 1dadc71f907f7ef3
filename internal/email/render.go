package email

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	texttemplate "text/template"
	"unicode"

	"github.com/careerops/jobs/internal/job"
)

//go:embed templates
var templates embed.FS

// Outcome is what happened to a job that an email tells about.
type Outcome string

// The outcomes an email tells about.
const (
	OutcomeCompleted Outcome = "completed"
	OutcomeFailed    Outcome = "failed"
)

// Notification is what an email tells: a job's outcome, to its user.
type Notification struct {
	// JobID is the job's id (job.ValidID).
	JobID string
	// To is the recipient's address.
	To string
	// Outcome is completed or failed.
	Outcome Outcome
	// Error is why the job failed (failed only); shown as text, clipped to job.MaxErrorBytes.
	Error string
	// UnsubscribeToken is the signed token of the one-click unsubscribe link
	// (auth.IssueUnsubscribe).
	UnsubscribeToken string
}

// Message is a rendered email, ready to send.
type Message struct {
	// MessageID is the Message-ID header's value, angle brackets included: the same for the
	// same job and outcome, so a duplicate is recognisable.
	MessageID string
	From, To  string
	Subject   string
	// Text and HTML are the two alternative bodies.
	Text, HTML string
	// ListUnsubscribe is the List-Unsubscribe header's value ("<https://…>"); it goes with
	// "List-Unsubscribe-Post: List-Unsubscribe=One-Click" (RFC 8058).
	ListUnsubscribe string
	// UnsubscribeURL is the link in the bodies and the header.
	UnsubscribeURL string
}

// ListUnsubscribePost is the List-Unsubscribe-Post header's value (RFC 8058).
const ListUnsubscribePost = "List-Unsubscribe=One-Click"

// Renderer renders notifications with the sender and links of a Config.
type Renderer struct {
	from   string
	domain string
	base   string
	text   *texttemplate.Template
	html   *htmltemplate.Template
}

// NewRenderer returns a Renderer for cfg (From and PublicBaseURL; see Config.Validate).
func NewRenderer(cfg Config) (*Renderer, error) {
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: SMTP_FROM: %w", err)
	}
	text, err := texttemplate.ParseFS(templates, "templates/notification.txt")
	if err != nil {
		return nil, fmt.Errorf("email: template: %w", err)
	}
	html, err := htmltemplate.ParseFS(templates, "templates/notification.html")
	if err != nil {
		return nil, fmt.Errorf("email: template: %w", err)
	}
	return &Renderer{from: from.String(), domain: cfg.domain(), base: strings.TrimRight(cfg.PublicBaseURL, "/"),
		text: text, html: html}, nil
}

// view is what the templates see.
type view struct {
	Completed                 bool
	JobID, Error, Subject     string
	LetterURL, UnsubscribeURL string
}

// Render renders n: the subject, both bodies, the links and the headers.
func (r *Renderer) Render(n Notification) (Message, error) {
	switch {
	case !job.ValidID(n.JobID):
		return Message{}, fmt.Errorf("email: render: invalid job id %q", job.Clip(n.JobID, 80))
	case n.Outcome != OutcomeCompleted && n.Outcome != OutcomeFailed:
		return Message{}, fmt.Errorf("email: render: unknown outcome %q", job.Clip(string(n.Outcome), 40))
	case n.UnsubscribeToken == "":
		return Message{}, errors.New("email: render: no unsubscribe token")
	}
	to, err := mail.ParseAddress(n.To)
	if err != nil {
		return Message{}, fmt.Errorf("email: render: recipient: %w", err)
	}
	v := view{
		Completed: n.Outcome == OutcomeCompleted, JobID: n.JobID, Error: plainText(n.Error),
		LetterURL:      r.base + "/?job=" + url.QueryEscape(n.JobID),
		UnsubscribeURL: r.base + "/unsubscribe?token=" + url.QueryEscape(n.UnsubscribeToken),
	}
	v.Subject = "Your cover letter is ready"
	if !v.Completed {
		v.Subject = "Your cover letter could not be written"
		v.Error = cmp.Or(v.Error, "The service did not say why.") // plainText trimmed it
	}
	var text, html bytes.Buffer
	if err := r.text.Execute(&text, v); err != nil {
		return Message{}, fmt.Errorf("email: render text: %w", err)
	}
	if err := r.html.Execute(&html, v); err != nil {
		return Message{}, fmt.Errorf("email: render html: %w", err)
	}
	return Message{
		MessageID: MessageID(n.JobID, n.Outcome, r.domain), From: r.from, To: to.Address, Subject: v.Subject,
		Text: text.String(), HTML: html.String(),
		ListUnsubscribe: "<" + v.UnsubscribeURL + ">", UnsubscribeURL: v.UnsubscribeURL,
	}, nil
}

// dotAtom is an id-left that RFC 5322 takes as it is.
var dotAtom = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// MessageID is the Message-ID of the email about jobID's outcome, from domain:
// "<jobID.outcome@domain>", the job id hex-encoded ("x…") when it holds characters a
// Message-ID may not (job ids may hold ':').
func MessageID(jobID string, o Outcome, domain string) string {
	left := jobID
	if !dotAtom.MatchString(jobID) {
		left = "x" + hex.EncodeToString([]byte(jobID))
	}
	return "<" + left + "." + string(o) + "@" + domain + ">"
}

// plainText makes an error text fit a body: valid UTF-8, no control characters but line
// breaks and tabs, clipped to job.MaxErrorBytes. The HTML template escapes it further.
func plainText(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return job.Clip(strings.TrimSpace(s), job.MaxErrorBytes)
}
