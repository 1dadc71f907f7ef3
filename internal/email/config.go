// Package email tells users by email what happened to their jobs: it renders a notification
// (plain text and HTML, with a link to the letter and a one-click unsubscribe link), sends it
// over SMTP (wneessen/go-mail: STARTTLS or implicit TLS, auth, timeouts), sorts SMTP failures
// into transient and permanent ones (Classify), and keeps the sends to each recipient domain
// within a rate shared by every worker replica (DomainLimiter, over internal/llmbudget's
// table). It knows nothing of queues or jobs' storage: the notifications.email job kind
// wires it in.
package email

import (
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// TLSMode is how the connection to the SMTP server is secured.
type TLSMode string

// The TLS modes of SMTP_TLS.
const (
	// TLSNone sends in the clear (a local relay, Mailpit): never with a password on a network.
	TLSNone TLSMode = "none"
	// TLSStartTLS connects in the clear and requires STARTTLS before anything else is sent
	// (submission, port 587).
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (submissions, port 465).
	TLSImplicit TLSMode = "tls"
)

// Defaults of Config, stated once.
const (
	// DefaultTLS is SMTP_TLS's default: STARTTLS is required, never skipped.
	DefaultTLS = TLSStartTLS
	// DefaultPort is SMTP_PORT's default with STARTTLS or no TLS (submission).
	DefaultPort = 587
	// DefaultImplicitTLSPort is SMTP_PORT's default with SMTP_TLS=tls (submissions).
	DefaultImplicitTLSPort = 465
	// DefaultFrom is SMTP_FROM's default.
	DefaultFrom = "CareerOps <no-reply@careerops.invalid>"
	// DefaultTimeout bounds the connection and each SMTP command.
	DefaultTimeout = 30 * time.Second
	// DefaultPerDomainPerMinute is EMAIL_PER_DOMAIN_PER_MINUTE's default.
	DefaultPerDomainPerMinute = 60
	// DefaultPublicBaseURL is PUBLIC_BASE_URL's default: the api as `make dev` runs it.
	DefaultPublicBaseURL = "http://127.0.0.1:8080"
)

// Config is how email is sent. An empty Host turns email off: nothing is sent, and the
// worker runs without it.
type Config struct {
	// Host is the SMTP server; empty: email off.
	Host string `env:"SMTP_HOST" help:"The SMTP server's host name; empty: no email is sent (users may still opt in; nothing goes out)."`
	// Port is the SMTP server's port; 0: DefaultImplicitTLSPort with TLS "tls", else DefaultPort.
	Port int `env:"SMTP_PORT" help:"The SMTP server's port; 0: 465 with SMTP_TLS=tls, else 587."`
	// Username, when set, authenticates (SCRAM, CRAM-MD5, PLAIN or LOGIN, as the server
	// offers; PLAIN and LOGIN only over TLS).
	Username string `env:"SMTP_USERNAME" help:"Authenticates as this user when set (SCRAM, CRAM-MD5, PLAIN or LOGIN, as the server offers; PLAIN and LOGIN only over TLS)."`
	// Password is Username's password. Never logged.
	Password string `env:"SMTP_PASSWORD" help:"The SMTP password. Never logged."`
	// TLS is none, starttls or tls.
	TLS TLSMode `env:"SMTP_TLS" help:"none, starttls (required, never skipped) or tls (implicit TLS from the first byte)."`
	// From is the sender, an RFC 5322 address ("Name <addr>"); its domain names Message-IDs.
	From string `env:"SMTP_FROM" help:"The sender, e.g. \"CareerOps <no-reply@example.com>\"; its domain also ends every Message-ID."`
	// Timeout bounds the connection and each command.
	Timeout time.Duration `env:"SMTP_TIMEOUT" help:"Bounds connecting to the SMTP server and each of its answers."`
	// PerDomainPerMinute caps the mails sent to one recipient domain per minute, across
	// worker replicas (0: no cap).
	PerDomainPerMinute int `env:"EMAIL_PER_DOMAIN_PER_MINUTE" help:"Caps the emails sent to one recipient domain per minute, shared by every worker replica (0: no cap)."`
	// PublicBaseURL is where users reach the web page: links in mails start with it.
	PublicBaseURL string `env:"PUBLIC_BASE_URL" help:"The web page's public URL: links in emails (the letter, unsubscribe) start with it."`
}

// DefaultConfig is Config's defaults.
func DefaultConfig() Config {
	return Config{
		TLS: DefaultTLS, From: DefaultFrom, Timeout: DefaultTimeout,
		PerDomainPerMinute: DefaultPerDomainPerMinute, PublicBaseURL: DefaultPublicBaseURL,
	}
}

// Enabled reports whether email is on: an SMTP host is set.
func (c Config) Enabled() bool { return c.Host != "" }

// Validate reports the first problem with c as one line; an email that is off is valid.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	switch {
	case c.TLS != TLSNone && c.TLS != TLSStartTLS && c.TLS != TLSImplicit:
		return fmt.Errorf("SMTP_TLS must be none, starttls or tls, not %q", c.TLS)
	case c.Port < 0 || c.Port > 65535:
		return errors.New("SMTP_PORT must be from 1 to 65535 (0: by SMTP_TLS)")
	case c.Timeout <= 0:
		return errors.New("SMTP_TIMEOUT must be positive")
	case c.PerDomainPerMinute < 0:
		return errors.New("EMAIL_PER_DOMAIN_PER_MINUTE must not be negative")
	case c.Password != "" && c.Username == "":
		return errors.New("SMTP_PASSWORD needs SMTP_USERNAME")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("SMTP_FROM must be an email address such as \"CareerOps <no-reply@example.com>\": %w", err)
	}
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("PUBLIC_BASE_URL must be an http(s) URL")
	}
	return nil
}

// port is the port to connect to.
func (c Config) port() int {
	switch {
	case c.Port > 0:
		return c.Port
	case c.TLS == TLSImplicit:
		return DefaultImplicitTLSPort
	}
	return DefaultPort
}

// domain is the domain of From (Message-IDs end with it); "careerops.invalid" if it has none.
func (c Config) domain() string {
	if a, err := mail.ParseAddress(c.From); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			return strings.ToLower(d)
		}
	}
	return "careerops.invalid"
}

// LogValue shows c in logs without its password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host), slog.Int("port", c.port()), slog.String("tls", string(c.TLS)),
		slog.String("username", c.Username), slog.Bool("password_set", c.Password != ""),
		slog.String("from", c.From), slog.Duration("timeout", c.Timeout),
		slog.Int("per_domain_per_minute", c.PerDomainPerMinute))
}
