package testkit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions configure a test SMTP server.
type SMTPOptions struct {
	// ImplicitTLS speaks TLS from the first byte (as on port 465); otherwise the server speaks
	// plain SMTP and offers STARTTLS.
	ImplicitTLS bool
	// Username and Password, when Username is set, require AUTH PLAIN (offered over TLS only).
	Username, Password string
}

// SMTPMessage is a message the test server accepted.
type SMTPMessage struct {
	From string   // the envelope's MAIL FROM
	To   []string // the envelope's RCPT TOs
	Data []byte   // the message as received
	// Header is the parsed header; MessageID and Subject are its fields, decoded.
	Header    mail.Header
	MessageID string
	Subject   string
	// Text and HTML are the text/plain and text/html bodies, transfer-decoded.
	Text, HTML string
	// TLS tells whether the message came over TLS (STARTTLS or implicit); User is who
	// authenticated ("" for nobody).
	TLS  bool
	User string
}

// SMTPServer is a real SMTP server (emersion/go-smtp) in the test's process, on
// 127.0.0.1:<random>, with a self-signed certificate made for the test. It records every
// message it accepts, and can be told to refuse messages with an SMTP reply or to answer
// slowly.
type SMTPServer struct {
	// Host and Port are where it listens (Host is 127.0.0.1, which its certificate names).
	Host string
	Port int
	// RootCAs trusts its certificate.
	RootCAs *x509.CertPool

	opts    SMTPOptions
	server  *smtp.Server
	mu      sync.Mutex
	msgs    []SMTPMessage
	fail    *smtp.SMTPError
	failFor int // messages still to refuse; -1: until told otherwise
	delay   time.Duration
	changed chan struct{} // closed and replaced when a message arrives
	closed  chan struct{} // closed when the server stops: a pause ends at once
}

// StartSMTPServer starts a test SMTP server, stopped when the test ends.
func StartSMTPServer(t testing.TB, opts SMTPOptions) *SMTPServer {
	t.Helper()
	cert, roots, err := selfSignedCert()
	if err != nil {
		t.Fatalf("testkit: SMTP certificate: %v", err)
	}
	s := &SMTPServer{Host: "127.0.0.1", RootCAs: roots, opts: opts, changed: make(chan struct{}), closed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s, conn: c}, nil
	}))
	srv.Domain = "smtp.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = smtpQuietLog{}
	s.server = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: SMTP listen: %v", err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when closed
	}()
	t.Cleanup(func() {
		close(s.closed) // a slow answer in progress stops waiting
		_ = srv.Close()
		<-done
	})
	return s
}

// Addr is host:port.
func (s *SMTPServer) Addr() string { return net.JoinHostPort(s.Host, fmt.Sprint(s.Port)) }

// ClientTLSConfig is a client TLS configuration that trusts the server's certificate.
func (s *SMTPServer) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.RootCAs, ServerName: s.Host, MinVersion: tls.VersionTLS12}
}

// Fail makes the server refuse the next n messages (n < 0: every message until FailNone)
// after their data, with code (421, 450, 550…) and text.
func (s *SMTPServer) Fail(n, code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = &smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode, Message: text}
	s.failFor = n
}

// FailNone makes the server accept messages again.
func (s *SMTPServer) FailNone() { s.Fail(0, 0, "") }

// SetDelay makes the server wait d before it answers MAIL, RCPT and the end of DATA (0:
// answer at once).
func (s *SMTPServer) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Messages returns the messages accepted so far, in order.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

// WaitMessages waits until the server has accepted at least n messages, and returns them;
// the test fails if that takes longer than timeout.
func (s *SMTPServer) WaitMessages(t testing.TB, n int, timeout time.Duration) []SMTPMessage {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, changed := append([]SMTPMessage(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("testkit: the SMTP server got %d messages in %s, want %d", len(msgs), timeout, n)
			return nil
		}
	}
}

// pause waits the configured delay, or until the server stops.
func (s *SMTPServer) pause() {
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closed:
	}
}

// accept records m, or refuses it as told.
func (s *SMTPServer) accept(m SMTPMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil && s.failFor != 0 {
		if s.failFor > 0 {
			s.failFor--
		}
		return s.fail
	}
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// smtpSession is one client connection.
type smtpSession struct {
	s        *SMTPServer
	conn     *smtp.Conn
	user     string
	from     string
	to       []string
	authDone bool
}

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user, ss.authDone = username, true
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.pause()
	if ss.s.opts.Username != "" && !ss.authDone {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.pause()
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.pause()
	m := parseSMTPMessage(raw)
	_, m.TLS = ss.conn.TLSConnectionState()
	m.From, m.To, m.User = ss.from, ss.to, ss.user
	return ss.s.accept(m)
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }

// parseSMTPMessage reads the header and the text and HTML bodies of raw, as far as it can.
func parseSMTPMessage(raw []byte) SMTPMessage {
	m := SMTPMessage{Data: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return m
	}
	dec := new(mime.WordDecoder)
	m.Header = msg.Header
	m.MessageID = msg.Header.Get("Message-ID")
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.Subject = msg.Header.Get("Subject")
	}
	m.Text, m.HTML = bodies(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return m
}

// bodies finds the text/plain and text/html parts of a body, through nested multiparts.
func bodies(contentType, encoding string, body io.Reader) (text, html string) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return text, html
			}
			t, h := bodies(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			text, html = text+t, html+h
		}
	}
	decoded, _ := io.ReadAll(transferDecoder(encoding, body))
	switch mediaType {
	case "text/plain":
		return string(decoded), ""
	case "text/html":
		return "", string(decoded)
	}
	return "", ""
}

func transferDecoder(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	}
	return r
}

// selfSignedCert makes a certificate for 127.0.0.1 and localhost, and a pool that trusts it.
func selfSignedCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "careerops test SMTP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots, nil
}

// smtpQuietLog drops go-smtp's log lines (a client that hangs up mid-command is normal in
// tests).
type smtpQuietLog struct{}

func (smtpQuietLog) Printf(string, ...any) {}
func (smtpQuietLog) Println(...any)        {}
