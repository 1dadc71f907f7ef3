package httpapi

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/auth"
)

func TestDevToken(t *testing.T) {
	t.Parallel()
	verifier := auth.NewVerifier(opsSecret)

	t.Run("MintsAWorkingAdminTokenAndReusesTheUser", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		app := opsApp(&fakeOps{}, users, "")

		status, first := call(t, app, "POST", "/dev/token", "", `{"admin":true}`)
		if status != 200 || first["email"] != devEmail {
			t.Fatalf("first call: %d %v, want 200 for %s", status, first, devEmail)
		}
		token, _ := first["token"].(string)
		id, err := verifier.Identify(token)
		if err != nil || !id.Admin || float64(id.UserID) != first["userId"] {
			t.Fatalf("token speaks for %+v (%v), want admin user %v", id, err, first["userId"])
		}
		if status, body := call(t, app, "GET", "/api/ops/overview", token, ""); status != 200 {
			t.Fatalf("the admin dev token on the ops overview: %d %v", status, body)
		}

		status, second := call(t, app, "POST", "/dev/token", "", `{"email":"dev@example.com"}`)
		if status != 200 || second["userId"] != first["userId"] {
			t.Fatalf("second call: %d %v, want the same user %v", status, second, first["userId"])
		}
		plain, _ := second["token"].(string)
		if id, err := verifier.Identify(plain); err != nil || id.Admin {
			t.Fatalf("a token not asked as admin speaks for %+v (%v)", id, err)
		}
		if status, body := call(t, app, "GET", "/api/ops/overview", plain, ""); status != 403 {
			t.Fatalf("a plain dev token on the ops overview: %d %v, want 403", status, body)
		}

		status, other := call(t, app, "POST", "/dev/token", "", `{"email":"ada@example.com"}`)
		if status != 200 || other["email"] != "ada@example.com" || other["userId"] == first["userId"] {
			t.Fatalf("another email: %d %v, want a user of its own", status, other)
		}
	})

	t.Run("AnEmptyBodyAsksForTheDefaults", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		app := opsApp(&fakeOps{}, users, "")
		req := httptest.NewRequest("POST", "/dev/token", nil) // curl -X POST, no body nor type
		status, body := send(t, app, req)
		if status != 200 || body["email"] != devEmail {
			t.Fatalf("%d %v, want a token for %s", status, body, devEmail)
		}
		if id, err := verifier.Identify(body["token"].(string)); err != nil || id.Admin {
			t.Fatalf("token speaks for %+v (%v), want a plain user", id, err)
		}
	})

	t.Run("BadRequests", func(t *testing.T) {
		t.Parallel()
		users := &fakeUsers{}
		app := opsApp(&fakeOps{}, users, "")
		for _, tc := range []struct {
			body   string
			status int
			code   string
		}{
			{`{"email":`, 400, "invalid_json"},
			{`{"email":"a@example.com","role":"root"}`, 400, "invalid_json"},
			{`{"admin":"yes"}`, 400, "invalid_json"},
			{`{"email":"not-an-email"}`, 422, "validation_failed"},
			{`{"email":"Ada <ada@example.com>"}`, 422, "validation_failed"},
			{`{"email":" ada@example.com"}`, 422, "validation_failed"},
			{`{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, 422, "validation_failed"},
		} {
			status, body := call(t, app, "POST", "/dev/token", "", tc.body)
			if status != tc.status || errorCode(body) != tc.code {
				t.Errorf("body %s: %d %v, want %d %s", tc.body, status, body, tc.status, tc.code)
			}
		}
		req := httptest.NewRequest("POST", "/dev/token", strings.NewReader(`{}`))
		req.Header.Set(fiber.HeaderContentType, "text/plain")
		if status, body := send(t, app, req); status != 415 {
			t.Errorf("text/plain: %d %v, want 415", status, body)
		}
		if users.next != 0 {
			t.Errorf("bad requests created %d users", users.next)
		}
	})

	t.Run("DatabaseDownIs503", func(t *testing.T) {
		t.Parallel()
		app := opsApp(&fakeOps{}, &fakeUsers{err: errors.New("connection refused")}, "")
		if status, body := call(t, app, "POST", "/dev/token", "", `{}`); status != 503 || errorCode(body) != "unavailable" {
			t.Fatalf("%d %v, want 503 unavailable", status, body)
		}
	})
}
