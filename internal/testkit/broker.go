package testkit

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPURL is the RabbitMQ server the tests use: TEST_RABBITMQ_URL, or the local one as guest.
func AMQPURL() string {
	return cmp.Or(os.Getenv("TEST_RABBITMQ_URL"), "amqp://guest:guest@127.0.0.1:5672/")
}

// NewVhostURL creates a virtual host for this test, grants the test user every permission on
// it, deletes it (and with it every queue the test declared) when the test ends, and returns
// an AMQP URL on it.
//
// It uses the management API on port 15672 of the same host when it answers, else
// `rabbitmqctl` (which only reaches the local node).
func NewVhostURL(t testing.TB) string {
	t.Helper()
	admin, err := NewRabbitAdmin("", AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	vhost := "careerops-test-" + RandomHex(6)
	va := vhostAdminFor(admin)
	if err := va.create(vhost, admin.User); err != nil {
		t.Fatalf("testkit: create vhost %s (is RabbitMQ running? `make services`): %v", vhost, err)
	}
	t.Cleanup(func() {
		if err := va.delete(vhost); err != nil {
			t.Errorf("testkit: delete vhost %s: %v", vhost, err)
		}
	})
	u, _ := url.Parse(AMQPURL()) // parsed by NewRabbitAdmin already
	u.User = url.UserPassword(admin.User, admin.Pass)
	u.Path, u.RawPath = "/"+vhost, ""
	return u.String()
}

// Channel opens a plain AMQP connection and channel on amqpURL for a test to publish and
// inspect messages with; both are closed when the test ends.
func Channel(t testing.TB, amqpURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("testkit: dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("testkit: open channel: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// CloseConnections makes RabbitMQ close every client connection of amqpURL's vhost, as a
// broker restart would, so tests can check that clients reconnect.
func CloseConnections(t testing.TB, amqpURL string) {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal("testkit: bad AMQP URL")
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	if err := rabbitmqctl("close_all_connections", "-p", vhost, "careerops test: simulated restart"); err != nil {
		t.Fatalf("testkit: close connections of %s: %v", vhost, err)
	}
}

// vhostAdmin creates and deletes virtual hosts.
type vhostAdmin interface {
	create(vhost, user string) error
	delete(vhost string) error
}

// managementAnswers reports whether the management API of AMQPURL's host answers, asked once
// per test binary (a memo, not state: the answer decides between two ways to the same end).
var managementAnswers = sync.OnceValue(func() bool {
	a, err := NewRabbitAdmin("", AMQPURL())
	return err == nil && a.Answers(context.Background())
})

// vhostAdminFor picks the management API if it answers, else rabbitmqctl.
func vhostAdminFor(a *RabbitAdmin) vhostAdmin {
	if managementAnswers() {
		return httpVhosts{a}
	}
	return ctlVhosts{}
}

type httpVhosts struct{ a *RabbitAdmin }

func (h httpVhosts) create(vhost, _ string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.a.CreateVhost(ctx, vhost)
}

func (h httpVhosts) delete(vhost string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.a.DeleteVhost(ctx, vhost)
}

type ctlVhosts struct{}

func (ctlVhosts) create(vhost, user string) error {
	if err := rabbitmqctl("add_vhost", vhost); err != nil {
		return err
	}
	return rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
}

func (ctlVhosts) delete(vhost string) error { return rabbitmqctl("delete_vhost", vhost) }

func rabbitmqctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}
