package webui_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/careerops/jobs/internal/webui"
)

func setup(t *testing.T) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	webui.Routes(app)
	return app
}

// get sends one request to app and returns the response and its body.
func get(t *testing.T, app *fiber.App, method, target string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, http.NoBody)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return res, string(body)
}

func TestRoutesServePagesAndAssets(t *testing.T) {
	t.Parallel()
	app := setup(t)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", "<title>Cover letters"},
		{"/ops", "text/html; charset=utf-8", "<title>Ops"},
		{"/assets/app.css", "text/css; charset=utf-8", ":root"},
		{"/assets/index.js", "text/javascript; charset=utf-8", "EventSource"},
		{"/assets/ops.js", "text/javascript; charset=utf-8", "/api/ops/overview"},
		{"/assets/common.js", "text/javascript; charset=utf-8", "export"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			res, body := get(t, app, http.MethodGet, tc.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			want := map[string]string{
				"Content-Type":            tc.contentType,
				"Content-Security-Policy": webui.ContentSecurityPolicy,
				"Cache-Control":           "no-cache",
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}

			// Revalidation: the ETag answers 304 without a body.
			etag := res.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			res, body = get(t, app, http.MethodGet, tc.path, http.Header{"If-None-Match": {etag}})
			if res.StatusCode != http.StatusNotModified || body != "" {
				t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and no body", etag, res.StatusCode, len(body))
			}

			res, body = get(t, app, http.MethodHead, tc.path, nil)
			if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("HEAD: status %d, %d bytes, %q; want 200, no body, %q", res.StatusCode, len(body),
					res.Header.Get("Content-Type"), tc.contentType)
			}
		})
	}
}

func TestCSPAllowsNothingBeyondTheOrigin(t *testing.T) {
	t.Parallel()
	want := "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
	if webui.ContentSecurityPolicy != want {
		t.Errorf("CSP = %q, want %q", webui.ContentSecurityPolicy, want)
	}
}

func TestRoutesRefuseUnknownAssets(t *testing.T) {
	t.Parallel()
	app := setup(t)
	for _, target := range []string{
		"/assets/nope.js",
		"/assets/",
		"/assets/../webui.go",
		"/assets/%2e%2e/index.html",
		"/assets/assets/app.css",
		"/index.html", // the page lives at /
	} {
		res, _ := get(t, app, http.MethodGet, target, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, res.StatusCode)
		}
	}
}

// embedded returns every embedded file by name.
func embedded(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for name, body := range webui.Files() {
		files[name] = string(body)
	}
	for _, name := range []string{"index.html", "ops.html", "assets/app.css", "assets/common.js", "assets/index.js", "assets/ops.js"} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s is not embedded", name)
		}
	}
	return files
}

// No CDN, no font service, no analytics: nothing but the page's own origin.
func TestNoExternalURLs(t *testing.T) {
	t.Parallel()
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|https?://`)
	for name, body := range embedded(t) {
		if strings.HasPrefix(name, "assets/vendor/") {
			continue // kept as published, pinned by TestVendorFilesArePinned (uPlot's banner names its home page)
		}
		for i, line := range strings.Split(body, "\n") {
			// "//" alone starts JS comments; only a host after it makes a URL.
			if m := external.FindString(line); m != "" && (strings.HasPrefix(strings.ToLower(m), "http") || !strings.HasSuffix(name, ".js")) {
				t.Errorf("%s:%d references an external URL (%s): %s", name, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

// The vendored files are the ones pinned, and every one of them is.
func TestVendorFilesArePinned(t *testing.T) {
	t.Parallel()
	seen := 0
	for name, body := range embedded(t) {
		base, ok := strings.CutPrefix(name, "assets/vendor/")
		if !ok {
			continue
		}
		seen++
		sum := sha256.Sum256([]byte(body))
		if want, ok := webui.VendorSums[base]; !ok || hex.EncodeToString(sum[:]) != want {
			t.Errorf("%s: sha256 %x, pinned %q (vendor.go)", name, sum, want)
		}
	}
	if seen != len(webui.VendorSums) {
		t.Errorf("%d vendored files, %d pinned", seen, len(webui.VendorSums))
	}
	for _, f := range webui.UPlot {
		if _, ok := webui.VendorSums[f]; !ok {
			t.Errorf("the ops page loads %s, which is not pinned", f)
		}
	}
}

var (
	reference   = regexp.MustCompile(`(?i)\b(?:src|href)="([^"]*)"`)
	jsImport    = regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'"]*?\bfrom\s+'([^']+)'|^\s*import\s+'([^']+)'`)
	inlineStyle = regexp.MustCompile(`(?i)<style\b|\sstyle\s*=`)
	inlineJS    = regexp.MustCompile(`(?i)<script\b[^>]*>\s*[^<\s]|\son[a-z]+\s*=|javascript:`)
	idUse       = regexp.MustCompile(`\$\('#([A-Za-z0-9_-]+)`)
	idDef       = regexp.MustCompile(`\bid="([^"]+)"`)
	htmlScript  = regexp.MustCompile(`<script type="module" src="/assets/([^"]+)"></script>`)
)

// Every asset an HTML page references is embedded and served; the strict CSP forbids inline
// scripts, styles and handlers, so none may exist.
func TestPagesReferenceOnlyEmbeddedAssets(t *testing.T) {
	t.Parallel()
	app := setup(t)
	files := embedded(t)
	for _, page := range []string{"index.html", "ops.html"} {
		body := files[page]
		refs := reference.FindAllStringSubmatch(body, -1)
		if len(refs) < 3 {
			t.Fatalf("%s: only %d references found", page, len(refs))
		}
		for _, m := range refs {
			ref := m[1]
			switch {
			case ref == "/" || ref == "/ops" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "data:"):
				continue
			case !strings.HasPrefix(ref, "/assets/"):
				t.Errorf("%s references %q, which is not under /assets/", page, ref)
				continue
			}
			if _, ok := files[strings.TrimPrefix(ref, "/")]; !ok {
				t.Errorf("%s references %s, which is not embedded", page, ref)
			}
			if res, _ := get(t, app, http.MethodGet, ref, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s references %s, served with status %d", page, ref, res.StatusCode)
			}
		}
		if m := inlineStyle.FindString(body); m != "" {
			t.Errorf("%s has an inline style (%q), which the CSP blocks", page, m)
		}
		if m := inlineJS.FindString(body); m != "" {
			t.Errorf("%s has an inline script or handler (%q), which the CSP blocks", page, m)
		}
	}
	for name, body := range files {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range jsImport.FindAllStringSubmatch(body, -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") {
				t.Errorf("%s imports %q: only relative imports of embedded modules work without a bundler", name, spec)
				continue
			}
			if _, ok := files[path.Join(path.Dir(name), spec)]; !ok {
				t.Errorf("%s imports %s, which is not embedded", name, spec)
			}
		}
	}
}

// Every element a page's scripts (its module and the modules it imports) look up by id exists
// in that page.
func TestScriptsFindTheirElements(t *testing.T) {
	t.Parallel()
	files := embedded(t)
	for _, page := range []string{"index.html", "ops.html"} {
		html := files[page]
		var ids []string
		for _, m := range idDef.FindAllStringSubmatch(html, -1) {
			if slices.Contains(ids, m[1]) {
				t.Errorf("%s: id %q is used twice", page, m[1])
			}
			ids = append(ids, m[1])
		}
		scripts := htmlScript.FindAllStringSubmatch(html, -1)
		if len(scripts) != 1 {
			t.Fatalf("%s: want one module script, found %d", page, len(scripts))
		}
		modules := []string{"assets/" + scripts[0][1]}
		for _, m := range jsImport.FindAllStringSubmatch(files[modules[0]], -1) { // and the modules it imports
			modules = append(modules, path.Join("assets", m[1]+m[2]))
		}
		for _, js := range modules {
			for _, m := range idUse.FindAllStringSubmatch(files[js], -1) {
				if !slices.Contains(ids, m[1]) {
					t.Errorf("%s looks up #%s, which %s lacks", js, m[1], page)
				}
			}
		}
	}
}

// Every form control has a label.
func TestFormControlsAreLabelled(t *testing.T) {
	t.Parallel()
	control := regexp.MustCompile(`<(textarea|select|input)\b[^>]*\bid="([^"]+)"`)
	files := embedded(t)
	for _, page := range []string{"index.html", "ops.html"} {
		html := files[page]
		for _, m := range control.FindAllStringSubmatch(html, -1) {
			wrapped := regexp.MustCompile(`<label[^>]*>\s*<input[^>]*id="` + regexp.QuoteMeta(m[2]) + `"`)
			if !strings.Contains(html, `for="`+m[2]+`"`) && !wrapped.MatchString(html) {
				t.Errorf("%s: the %s #%s has no label", page, m[1], m[2])
			}
		}
	}
}
