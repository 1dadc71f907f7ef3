// Package brokertest gives each test its own RabbitMQ virtual host, deleted when the test
// ends, so tests that declare, fill and drain the real queues never see each other's messages.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BaseURL is the server the tests use: TEST_RABBITMQ_URL, or the local RabbitMQ as guest.
func BaseURL() string {
	if u := os.Getenv("TEST_RABBITMQ_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// NewVhostURL creates a virtual host for this test, grants the test user every permission on
// it, deletes it (and with it every queue the test declared) when the test ends, and returns
// an AMQP URL on it.
//
// It uses the management plugin's HTTP API on port 15672 of the same host when it answers,
// else `rabbitmqctl` (which only reaches the local node).
func NewVhostURL(t testing.TB) string {
	t.Helper()
	base, err := url.Parse(BaseURL())
	if err != nil {
		t.Fatal("brokertest: TEST_RABBITMQ_URL is not a valid URL") // the error would print the password
	}
	user, pass := "guest", "guest"
	if base.User != nil {
		user = base.User.Username()
		if p, ok := base.User.Password(); ok {
			pass = p
		}
	}
	vhost := "careerops-test-" + randomHex(6)
	admin := adminFor(base.Hostname(), user, pass)
	if err := admin.create(vhost, user); err != nil {
		t.Fatalf("brokertest: create vhost %s (is RabbitMQ running? `make services`): %v", vhost, err)
	}
	t.Cleanup(func() {
		if err := admin.delete(vhost); err != nil {
			t.Errorf("brokertest: delete vhost %s: %v", vhost, err)
		}
	})
	u := *base
	u.User = url.UserPassword(user, pass)
	u.Path = "/" + vhost
	u.RawPath = ""
	return u.String()
}

// Channel opens a plain AMQP connection and channel on amqpURL for a test to publish and
// inspect messages with; both are closed when the test ends.
func Channel(t testing.TB, amqpURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("brokertest: dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("brokertest: open channel: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// vhostAdmin creates and deletes virtual hosts.
type vhostAdmin interface {
	create(vhost, user string) error
	delete(vhost string) error
}

var (
	adminOnce   sync.Once
	adminCached vhostAdmin
)

// adminFor picks the HTTP API if it answers (once per test binary), else rabbitmqctl.
func adminFor(host, user, pass string) vhostAdmin {
	adminOnce.Do(func() {
		h := httpAdmin{base: "http://" + net.JoinHostPort(host, "15672"), user: user, pass: pass,
			client: &http.Client{Timeout: 10 * time.Second, Transport: noKeepAlive}}
		if h.answers() {
			adminCached = h
			return
		}
		adminCached = ctlAdmin{}
	})
	return adminCached
}

// noKeepAlive leaves no idle connection behind to trip the goroutine-leak checks of the
// packages that use brokertest.
var noKeepAlive = &http.Transport{DisableKeepAlives: true}

type httpAdmin struct {
	base, user, pass string
	client           *http.Client
}

func (h httpAdmin) answers() bool {
	c := &http.Client{Timeout: time.Second, Transport: noKeepAlive}
	req, err := http.NewRequest(http.MethodGet, h.base+"/api/overview", nil)
	if err != nil {
		return false
	}
	req.SetBasicAuth(h.user, h.pass)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (h httpAdmin) do(method, path, body string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(h.user, h.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

func (h httpAdmin) create(vhost, user string) error {
	v := url.PathEscape(vhost)
	if err := h.do(http.MethodPut, "/api/vhosts/"+v, "{}"); err != nil {
		return err
	}
	return h.do(http.MethodPut, "/api/permissions/"+v+"/"+url.PathEscape(user),
		`{"configure":".*","write":".*","read":".*"}`)
}

func (h httpAdmin) delete(vhost string) error {
	return h.do(http.MethodDelete, "/api/vhosts/"+url.PathEscape(vhost), "")
}

type ctlAdmin struct{}

func (ctlAdmin) create(vhost, user string) error {
	if err := rabbitmqctl("add_vhost", vhost); err != nil {
		return err
	}
	return rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
}

func (ctlAdmin) delete(vhost string) error { return rabbitmqctl("delete_vhost", vhost) }

func rabbitmqctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CloseConnections makes RabbitMQ close every client connection of amqpURL's vhost, as a
// broker restart would, so tests can check that clients reconnect.
func CloseConnections(t testing.TB, amqpURL string) {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal("brokertest: bad AMQP URL")
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	if err := rabbitmqctl("close_all_connections", "-p", vhost, "careerops test: simulated restart"); err != nil {
		t.Fatalf("brokertest: close connections of %s: %v", vhost, err)
	}
}
