package email

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"unicode"

	gomail "github.com/wneessen/go-mail"

	"github.com/careerops/jobs/internal/job"
)

// MaxReplyBytes bounds the server's reply kept with a failure (a job's error, a dead
// letter's header).
const MaxReplyBytes = 512

// Error is a failed send: whether retrying can help, and what the server said.
type Error struct {
	// Permanent is true when a retry cannot help: an SMTP 5xx, or a message the server can
	// never take. Otherwise the send may be retried later.
	Permanent bool
	// Reply is the server's reply (or the failure) on one line, header-safe, at most
	// MaxReplyBytes.
	Reply string
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Classify sorts a send's failure: an SMTP 5xx is permanent, and so is a message go-mail
// cannot address (a bad sender or recipient); an SMTP 4xx, a connection error, a TLS
// failure or a timeout is transient, and so is anything unknown (the attempt budget bounds
// its retries). reply is the failure's text as the server gave it, made safe for a header
// and cut to MaxReplyBytes.
func Classify(err error) (permanent bool, reply string) {
	if err == nil {
		return false, ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Permanent, e.Reply
	}
	code, text := smtpReply(err)
	switch {
	case code >= 500 && code < 600:
		return true, safeReply(text)
	case code >= 400 && code < 500:
		return false, safeReply(text)
	}
	var send *gomail.SendError
	if errors.As(err, &send) {
		switch send.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return true, safeReply(send.Error())
		}
	}
	return false, safeReply(err.Error())
}

// smtpReply finds the SMTP reply code of err and the text that carries it: a textproto.Error
// (a greeting, STARTTLS or AUTH refused) or go-mail's SendError (MAIL, RCPT, DATA refused).
func smtpReply(err error) (code int, text string) {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code, fmt.Sprintf("%03d %s", tp.Code, tp.Msg)
	}
	var send *gomail.SendError
	if errors.As(err, &send) && send.ErrorCode() != 0 {
		return send.ErrorCode(), replyOf(send.Error(), send.ErrorCode())
	}
	return 0, ""
}

// replyOf is the part of a SendError's text from the reply code on ("550 5.1.1 …"), without
// go-mail's own prefix and its ", affected …" suffix; the whole text if the code is not in it.
func replyOf(s string, code int) string {
	i := strings.Index(s, fmt.Sprintf("%03d ", code))
	if i < 0 {
		return s
	}
	s = s[i:]
	if j := strings.Index(s, ", affected "); j > 0 {
		s = s[:j]
	}
	return s
}

// safeReply makes s fit a header and a job's error: one line of printable UTF-8 (line breaks
// and controls become spaces, runs of spaces one), at most MaxReplyBytes.
func safeReply(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	return job.Clip(s, min(MaxReplyBytes, job.MaxErrorBytes))
}
