package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// Sender sends messages over SMTP, one connection per message.
type Sender struct {
	cfg       Config
	tlsConfig *tls.Config
}

// SenderOption adjusts a Sender.
type SenderOption func(*Sender)

// WithTLSConfig sets the TLS configuration (e.g. a test server's root CA); by default the
// system's roots verify the server's certificate for Host.
func WithTLSConfig(c *tls.Config) SenderOption { return func(s *Sender) { s.tlsConfig = c } }

// NewSender returns a Sender for cfg, which must be enabled and valid.
func NewSender(cfg Config, opts ...SenderOption) (*Sender, error) {
	if !cfg.Enabled() {
		return nil, errors.New("email: no SMTP_HOST")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	s := &Sender{cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	if s.tlsConfig == nil {
		s.tlsConfig = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// Send sends m. A failure is an *Error: Permanent for an SMTP 5xx or a message the server
// can never take, transient for a 4xx, a connection error or a timeout.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, err := s.msg(m)
	if err != nil {
		return &Error{Permanent: true, Reply: safeReply(err.Error()), Err: err}
	}
	client, err := gomail.NewClient(s.cfg.Host, s.clientOptions()...)
	if err != nil {
		return &Error{Permanent: true, Reply: safeReply(err.Error()), Err: fmt.Errorf("email: client: %w", err)}
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		permanent, reply := Classify(err)
		return &Error{Permanent: permanent, Reply: reply, Err: fmt.Errorf("email: send %s: %w", m.MessageID, err)}
	}
	return nil
}

// clientOptions are go-mail's options for s's Config.
func (s *Sender) clientOptions() []gomail.Option {
	c := s.cfg
	opts := []gomail.Option{
		gomail.WithPort(c.port()), gomail.WithTimeout(c.Timeout), gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithHELO(c.domain()),
	}
	switch c.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	return opts
}

// msg is m as go-mail's message.
func (s *Sender) msg(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return nil, fmt.Errorf("email: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("email: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(m.MessageID, "<"), ">"))
	msg.SetDate()
	if m.ListUnsubscribe != "" {
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, m.ListUnsubscribe)
		msg.SetGenHeader(gomail.HeaderListUnsubscribePost, ListUnsubscribePost)
	}
	msg.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}
