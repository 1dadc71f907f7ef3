package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/careerops/jobs/internal/auth"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/telemetry"
	"github.com/careerops/jobs/internal/testkit"
	"github.com/careerops/jobs/internal/webui"
)

// notificationsBundle is the real server on a fresh database, and two users: one with an
// address, one without (first seen in another service's message).
type notificationsBundle struct {
	app                  *fiber.App
	secret               []byte
	withAddress, without int64
	store                *jobstore.Store
}

func setupNotifications(t *testing.T) *notificationsBundle {
	t.Helper()
	t.Parallel()
	pool, _ := testkit.NewPool(t)
	store := jobstore.New(pool)
	secret := []byte(strings.Repeat("n", 32))
	b := &notificationsBundle{secret: secret, store: store}
	var err error
	if b.withAddress, err = store.AddUser(context.Background(), "ada@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (id) VALUES (800001) RETURNING id`).Scan(&b.without); err != nil {
		t.Fatal(err)
	}
	b.app = New(Deps{
		Store: store, Notifications: store, MyData: store, Verifier: auth.NewVerifier(secret), Registry: prometheus.NewRegistry(),
		Telemetry: telemetry.New(slog.New(slog.DiscardHandler), noop.NewTracerProvider()),
	})
	return b
}

func (b *notificationsBundle) userToken(t *testing.T, id int64) string {
	t.Helper()
	token, err := auth.Issue(b.secret, id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (b *notificationsBundle) unsubscribeToken(t *testing.T, id int64) string {
	t.Helper()
	token, err := auth.IssueUnsubscribe(b.secret, id, auth.UnsubscribeTTL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestNotificationsAPI(t *testing.T) {
	b := setupNotifications(t)
	ada, nobody := b.userToken(t, b.withAddress), b.userToken(t, b.without)

	status, body := call(t, b.app, "GET", "/api/me/notifications", "", "")
	if status != 401 {
		t.Fatalf("without a token: %d %v", status, body)
	}
	status, body = call(t, b.app, "GET", "/api/me/notifications", ada, "")
	if status != 200 || body["email"] != false || body["address"] != "ada@example.org" {
		t.Fatalf("GET: %d %v; want off with the address", status, body)
	}
	status, body = call(t, b.app, "GET", "/api/me/notifications", nobody, "")
	if v, ok := body["address"]; status != 200 || !ok || v != nil {
		t.Fatalf("GET without an address: %d %v; want address null", status, body)
	}

	refusals := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"not JSON", "text/plain", `{"email":true}`, 415, "unsupported_media_type"},
		{"bad JSON", "application/json", `{"email":`, 400, "invalid_json"},
		{"a string", "application/json", `{"email":"yes"}`, 400, "invalid_json"},
		{"an unknown field", "application/json", `{"email":true,"sms":true}`, 400, "invalid_json"},
		{"two objects", "application/json", `{"email":true}{}`, 400, "invalid_json"},
		{"no email", "application/json", `{}`, 422, "validation_failed"},
		{"null", "application/json", `{"email":null}`, 422, "validation_failed"},
	}
	for _, r := range refusals {
		req := httptest.NewRequest("PATCH", "/api/me/notifications", strings.NewReader(r.body))
		req.Header.Set("Content-Type", r.contentType)
		req.Header.Set("Authorization", "Bearer "+ada)
		if status, body := send(t, b.app, req); status != r.status || errorCode(body) != r.code {
			t.Errorf("%s: %d %v; want %d %s", r.name, status, body, r.status, r.code)
		}
	}

	status, body = call(t, b.app, "PATCH", "/api/me/notifications", ada, `{"email":true}`)
	if status != 200 || body["email"] != true || body["address"] != "ada@example.org" {
		t.Fatalf("PATCH on: %d %v", status, body)
	}
	if _, body = call(t, b.app, "GET", "/api/me/notifications", ada, ""); body["email"] != true {
		t.Fatalf("GET after PATCH on: %v", body)
	}
	status, body = call(t, b.app, "PATCH", "/api/me/notifications", nobody, `{"email":true}`)
	if status != 409 || errorCode(body) != "no_email_address" {
		t.Errorf("PATCH on without an address: %d %v; want 409 no_email_address", status, body)
	}
	if status, body = call(t, b.app, "PATCH", "/api/me/notifications", nobody, `{"email":false}`); status != 200 || body["email"] != false {
		t.Errorf("PATCH off without an address: %d %v", status, body)
	}
	if status, _ = call(t, b.app, "PUT", "/api/me/notifications", ada, `{"email":true}`); status != 405 {
		t.Errorf("PUT: %d, want 405", status)
	}
	// An unsubscribe token is no user token.
	if status, _ = call(t, b.app, "GET", "/api/me/notifications", b.unsubscribeToken(t, b.withAddress), ""); status != 401 {
		t.Errorf("GET with an unsubscribe token: %d, want 401", status)
	}
}

// page sends req and returns the status, the body and the CSP header.
func page(t *testing.T, app *fiber.App, req *http.Request) (int, string, string) {
	t.Helper()
	resp, raw := answer(t, app, req)
	return resp.StatusCode, string(raw), resp.Header.Get("Content-Security-Policy")
}

// answer sends req and returns the answer and its body as they came.
func answer(t *testing.T, app *fiber.App, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

func TestUnsubscribe(t *testing.T) {
	b := setupNotifications(t)
	ada := b.userToken(t, b.withAddress)
	emailOn := func() bool {
		t.Helper()
		n, err := b.store.Notifications(context.Background(), b.withAddress)
		if err != nil {
			t.Fatal(err)
		}
		return n.Email
	}
	turnOn := func() {
		t.Helper()
		if status, body := call(t, b.app, "PATCH", "/api/me/notifications", ada, `{"email":true}`); status != 200 {
			t.Fatalf("PATCH on: %d %v", status, body)
		}
	}
	token := b.unsubscribeToken(t, b.withAddress)

	// The link shows a page with a button; following it changes nothing.
	turnOn()
	status, html, csp := page(t, b.app, httptest.NewRequest("GET", "/unsubscribe?token="+url.QueryEscape(token), nil))
	if status != 200 || !strings.Contains(html, `<form method="post" action="/unsubscribe">`) ||
		!strings.Contains(html, `value="`+token+`"`) || csp != webui.ContentSecurityPolicy {
		t.Fatalf("GET /unsubscribe: %d, CSP %q\n%s", status, csp, html)
	}
	if !emailOn() {
		t.Fatal("following the link turned emails off: a mail scanner would unsubscribe everyone")
	}

	// The page's button.
	req := httptest.NewRequest("POST", "/unsubscribe", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, html, _ := page(t, b.app, req); status != 200 || !strings.Contains(html, "no more emails") || emailOn() {
		t.Fatalf("POST /unsubscribe (form): %d, emails on: %v\n%s", status, emailOn(), html)
	}

	// A mail client's one-click POST (RFC 8058), and again: the link keeps working.
	for range 2 {
		turnOn()
		req = httptest.NewRequest("POST", "/unsubscribe?token="+url.QueryEscape(token), strings.NewReader("List-Unsubscribe=One-Click"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, _, _ := page(t, b.app, req); status != 200 || emailOn() {
			t.Fatalf("one-click POST: %d, emails on: %v", status, emailOn())
		}
	}

	// Bad tokens: 400 and a page that says so, never a 500; nothing changes.
	turnOn()
	expired, _ := auth.IssueUnsubscribe(b.secret, b.withAddress, time.Hour, time.Now().Add(-3*time.Hour))
	stream, _ := auth.IssueStream(b.secret, b.withAddress, "job-1", time.Minute, time.Now())
	for name, bad := range map[string]string{"none": "", "junk": "junk", "expired": expired, "a user token": ada, "a stream token": stream} {
		for _, method := range []string{"GET", "POST"} {
			req := httptest.NewRequest(method, "/unsubscribe?token="+url.QueryEscape(bad), strings.NewReader("List-Unsubscribe=One-Click"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if status, html, _ := page(t, b.app, req); status != 400 || !strings.Contains(html, "does not work") {
				t.Errorf("%s %s: %d\n%s", method, name, status, html)
			}
		}
	}
	if !emailOn() {
		t.Error("a bad token turned emails off")
	}
	// A deleted user's link answers as done: they get no email either.
	if status, _, _ := page(t, b.app, httptest.NewRequest("POST", "/unsubscribe?token="+url.QueryEscape(b.unsubscribeToken(t, 999999)), nil)); status != 200 {
		t.Errorf("a deleted user's link: %d", status)
	}
}
