package email

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name      string
		err       error
		permanent bool
		reply     string
	}{
		{"nil", nil, false, ""},
		{"550 refused", &textproto.Error{Code: 550, Msg: "5.1.1 no such user"}, true, "550 5.1.1 no such user"},
		{"554 wrapped", fmt.Errorf("send: %w", &textproto.Error{Code: 554, Msg: "5.7.1 spam"}), true, "554 5.7.1 spam"},
		{"535 auth failed", fmt.Errorf("dial failed: %w", &textproto.Error{Code: 535, Msg: "5.7.8 bad credentials"}), true, "535 5.7.8 bad credentials"},
		{"421 at the greeting", fmt.Errorf("dial failed: %w", &textproto.Error{Code: 421, Msg: "4.3.2 shutting down"}), false, "421 4.3.2 shutting down"},
		{"450 mailbox busy", &textproto.Error{Code: 450, Msg: "4.2.1 try later"}, false, "450 4.2.1 try later"},
		{"a multi-line reply on one line", &textproto.Error{Code: 550, Msg: "first\nsecond\r\nBcc: x"}, true, "550 first second Bcc: x"},
		{"a long reply is cut", &textproto.Error{Code: 552, Msg: long}, true, "552 " + long[:MaxReplyBytes-4-len("…")] + "…"},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false, "dial tcp: connect: connection refused"},
		{"timeout", fmt.Errorf("dial failed: %w", context.DeadlineExceeded), false, "dial failed: context deadline exceeded"},
		{"unknown", errors.New("something \x00odd\u202e"), false, "something odd"},
		{"already classified", fmt.Errorf("x: %w", &Error{Permanent: true, Reply: "550 no", Err: errors.New("e")}), true, "550 no"},
		{"invalid UTF-8", &textproto.Error{Code: 451, Msg: "bad \xff byte"}, false, "451 bad \uFFFD byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			permanent, reply := Classify(tt.err)
			if permanent != tt.permanent || reply != tt.reply {
				t.Errorf("Classify = %v, %q; want %v, %q", permanent, reply, tt.permanent, tt.reply)
			}
			if len(reply) > MaxReplyBytes || strings.ContainsAny(reply, "\r\n\x00") {
				t.Errorf("the reply is not header-safe: %q", reply)
			}
		})
	}
}
