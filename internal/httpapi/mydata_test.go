package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

// download fetches a file of an export as it comes: status, headers, body.
func download(t *testing.T, b *notificationsBundle, token, path string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return answer(t, b.app, req)
}

// The export API on the real database (the data.export worker is replaced by the store's
// SaveExport, which it calls): one open export at a time, the owner only (another user gets
// 404), files as attachments once ready (409 before), a clear 400 for a bad id or format, and
// 410 once its 24 hours are over.
func TestExportAPI(t *testing.T) {
	b := setupNotifications(t)
	ctx := context.Background()
	ada, other := b.userToken(t, b.withAddress), b.userToken(t, b.without)

	status, body := call(t, b.app, "POST", "/api/me/export", ada, "")
	id, _ := body["id"].(string)
	if status != 202 || id == "" || body["status"] != "pending" || body["downloads"] != nil {
		t.Fatalf("POST /api/me/export = %d %v", status, body)
	}
	if status, again := call(t, b.app, "POST", "/api/me/export", ada, ""); status != 200 || again["id"] != id {
		t.Fatalf("a second POST while the first is written = %d %v; want 200 with the same export", status, again)
	}
	path := "/api/me/exports/" + id
	if status, body := call(t, b.app, "GET", path+"/download?format=json", ada, ""); status != 409 || errorCode(body) != "not_ready" {
		t.Fatalf("download before it is ready = %d %v", status, body)
	}

	if ok, err := b.store.SaveExport(ctx, b.withAddress, id, jobstore.ExportWritten{JSON: []byte(`{"format":"x"}`), ZIP: []byte("PK-zip"), CoverLetters: 2}); err != nil || !ok {
		t.Fatalf("SaveExport = %v, %v", ok, err)
	}
	status, body = call(t, b.app, "GET", path, ada, "")
	downloads, _ := body["downloads"].(map[string]any)
	if status != 200 || body["status"] != job.ExportReady || body["coverLetters"] != 2.0 || downloads["zip"] != path+"/download?format=zip" {
		t.Fatalf("GET a ready export = %d %v", status, body)
	}
	for _, f := range []struct{ format, mediaType, body string }{
		{"json", "application/json; charset=utf-8", `{"format":"x"}`},
		{"zip", "application/zip", "PK-zip"},
	} {
		resp, got := download(t, b, ada, path+"/download?format="+f.format)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != f.mediaType || string(got) != f.body ||
			!regexp.MustCompile(`^attachment; filename="careerops-export-\d{8}T\d{6}Z\.`+f.format+`"$`).MatchString(resp.Header.Get("Content-Disposition")) {
			t.Fatalf("download %s = %d %v %q", f.format, resp.StatusCode, resp.Header, got)
		}
	}

	refusals := []struct {
		name, token, path string
		status            int
		code              string
	}{
		{"another user's export", other, path, 404, "not_found"},
		{"another user's file", other, path + "/download?format=json", 404, "not_found"},
		{"an unknown export", ada, "/api/me/exports/nope", 404, "not_found"},
		{"a bad format", ada, path + "/download?format=pdf", 400, "invalid_format"},
		{"a bad id", ada, "/api/me/exports/" + "has%20space", 400, "invalid_export_id"},
		{"no token", "", path, 401, "unauthorized"},
	}
	for _, r := range refusals {
		if status, body := call(t, b.app, "GET", r.path, r.token, ""); status != r.status || errorCode(body) != r.code {
			t.Errorf("%s: %d %v; want %d %s", r.name, status, body, r.status, r.code)
		}
	}

	if _, err := b.store.Pool().Exec(ctx, `UPDATE exports SET expires_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "/download?format=zip"} {
		if status, body := call(t, b.app, "GET", p, ada, ""); status != 410 || errorCode(body) != "expired" {
			t.Errorf("GET %s after 24 h = %d %v; want 410", p, status, body)
		}
	}
	if status, body := call(t, b.app, "POST", "/api/me/export", ada, ""); status != 202 || body["id"] == id {
		t.Fatalf("a new export after the last expired = %d %v", status, body)
	}
}

// DELETE /api/me erases the user: 204, their token answers 401 at once (this replica forgot
// them), and another user keeps theirs.
func TestEraseMeAPI(t *testing.T) {
	b := setupNotifications(t)
	ada, other := b.userToken(t, b.withAddress), b.userToken(t, b.without)
	if status, _ := call(t, b.app, "GET", "/api/me/notifications", ada, ""); status != 200 { // ada is known: cached
		t.Fatalf("before: %d", status)
	}
	req := httptest.NewRequest("DELETE", "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+ada)
	if resp, body := answer(t, b.app, req); resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("DELETE /api/me = %d %q", resp.StatusCode, body)
	}
	if status, body := call(t, b.app, "GET", "/api/me/notifications", ada, ""); status != 401 || errorCode(body) != "unknown_user" {
		t.Fatalf("ada's token after the erasure: %d %v", status, body)
	}
	if status, _ := call(t, b.app, "GET", "/api/me/notifications", other, ""); status != 200 {
		t.Fatalf("another user after ada's erasure: %d", status)
	}
	var system int64
	if err := b.store.Pool().QueryRow(context.Background(), `SELECT id FROM users WHERE email = $1`, job.SystemUserEmail).Scan(&system); err != nil {
		t.Fatal(err)
	}
	if status, body := call(t, b.app, "DELETE", "/api/me", b.userToken(t, system), ""); status != 403 || errorCode(body) != "forbidden" {
		t.Fatalf("DELETE /api/me as the system user = %d %v; want 403", status, body)
	}
}
