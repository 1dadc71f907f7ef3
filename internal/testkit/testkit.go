// Package testkit is the one home of test support: a freshly migrated PostgreSQL database per
// test (cloned from a template), a RabbitMQ virtual host per test and a client of the
// management API, row and message fixtures, Eventually, building and supervising programs as
// processes, a clean environment for them, and an SMTP server in the test's process
// (StartSMTPServer). Tests of every package use it, and so do the
// tools (bench, chaos, loadgen): the parts that take no testing.TB are for them.
//
// The servers are TEST_DATABASE_URL and TEST_RABBITMQ_URL, else the local PostgreSQL and
// RabbitMQ (`make services`).
package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
)

// RandomHex is n random bytes in hex: a suffix that keeps names of parallel tests and runs
// apart.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// WithDatabase returns the PostgreSQL URL rawURL with its database replaced by name.
func WithDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("testkit: bad database URL: %w", err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testkit: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ChildEnv is a clean environment for a program started by a test or a tool: PATH, HOME,
// LANG=C.UTF-8, TZ=UTC, the temporary directory, coverage and Go runtime knobs if this process
// has them, then vars ("K=V"). Nothing else leaks in: not the developer's DATABASE_URL, nor
// OTEL_*.
func ChildEnv(vars ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8", "TZ=UTC"}
	for _, k := range []string{"TMPDIR", "GOCOVERDIR", "GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, vars...)
}
