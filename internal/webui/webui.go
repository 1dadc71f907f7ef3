// Package webui holds the two web pages the api serves: "/" to request a cover letter and
// watch it being written, and "/ops" for operators (queues, failures, the dead-letter queue).
// They are plain HTML, CSS and ES modules embedded in the binary: no CDN, no build step.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ContentSecurityPolicy is sent with every page and asset: only same-origin scripts, styles,
// images (and data: images) and connections; no inline script or style; no framing.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; frame-ancestors 'none'"

//go:embed static pages
var embedded embed.FS

// page is one HTML page: the layout (pages/layout.html: header, navigation, sign-in, footer)
// around the page's own "app" template.
type page struct {
	Path, Title, Script, Footer string
	// Vendor are kept third-party files under assets/vendor (see vendor.go) the page loads
	// before its script: .css as style sheets, .js as classic deferred scripts.
	Vendor []string
	SignIn signIn
	Nav    []navLink
}

// signIn words the sign-in card of a page.
type signIn struct{ Title, Prompt, Label, DevRole string }

type navLink struct{ Href, Label string }

// pages are the HTML pages by file name.
func pages() map[string]page {
	nav := []navLink{{"/", "Cover letters"}, {"/ops", "Ops"}}
	return map[string]page{
		"index.html": {
			Path: "/", Title: "Cover letters", Script: "index.js", Nav: nav,
			Footer: "CareerOps · letters are written by a language model: read them before you send them.",
			SignIn: signIn{Title: "Sign in", Prompt: "Paste your access token to write cover letters.", Label: "Access token", DevRole: "user"},
		},
		"ops.html": {
			Path: "/ops", Title: "Ops", Script: "ops.js", Nav: nav, Vendor: uPlot,
			Footer: "CareerOps operations · requeued jobs run again from the start.",
			SignIn: signIn{Title: "Ops sign-in", Prompt: "Paste an access token with the admin claim.", Label: "Admin access token", DevRole: "admin"},
		},
	}
}

// Files returns what the pages serve, by name: the rendered pages (index.html, ops.html) and
// assets/*.
func Files() map[string][]byte {
	files := map[string][]byte{}
	err := fs.WalkDir(embedded, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[strings.TrimPrefix(name, "static/")], err = fs.ReadFile(embedded, name)
		return err
	})
	for name, p := range pages() {
		if err != nil {
			break
		}
		files[name], err = render(name, p)
	}
	if err != nil { // embedded files and their templates are fixed at build time
		panic(fmt.Errorf("webui: reading the embedded files: %w", err))
	}
	return files
}

// render executes the layout with a page's own template.
func render(name string, p page) ([]byte, error) {
	t, err := template.New(name).Funcs(template.FuncMap{"hasSuffix": strings.HasSuffix}).
		ParseFS(embedded, "pages/layout.html", "pages/head.html", "pages/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.ExecuteTemplate(&b, "layout", p)
	return b.Bytes(), err
}

// Routes serves the pages on r: GET / (index.html), GET /ops (ops.html) and GET /assets/*.
// Fiber answers HEAD on the same routes. Call it before any catch-all handler.
func Routes(r fiber.Router) {
	files := load(Files())
	for name, p := range pages() {
		r.Get(p.Path, serve(files[name]))
	}
	r.Get("/assets/*", func(c *fiber.Ctx) error {
		f, ok := files["assets/"+c.Params("*")]
		if !ok {
			return fiber.NewError(fiber.StatusNotFound, "no such asset")
		}
		return serve(f)(c)
	})
}

// file is one embedded file, ready to send.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// load prepares every file once; the set never changes while the program runs.
func load(bodies map[string][]byte) map[string]*file {
	files := make(map[string]*file, len(bodies))
	for name, body := range bodies {
		sum := sha256.Sum256(body)
		files[name] = &file{
			body:        body,
			contentType: contentType(name),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
	}
	return files
}

// contentType names the type of a file by its extension, with a charset for text. It does
// not rely on the system's MIME table, which differs between machines (.js especially).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// serve sends f with the security headers. The files are not fingerprinted, so the browser
// revalidates every time (no-cache) and gets a 304 when its ETag still matches.
func serve(f *file) fiber.Handler {
	return func(c *fiber.Ctx) error {
		securityHeaders(c)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderETag, f.etag)
		c.Set(fiber.HeaderContentType, f.contentType)
		if etagMatches(c.Get(fiber.HeaderIfNoneMatch), f.etag) {
			c.Status(fiber.StatusNotModified)
			return nil
		}
		return c.Send(f.body)
	}
}

// securityHeaders sets the headers every page and asset is sent with.
func securityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, ContentSecurityPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
}

// etagMatches reports whether an If-None-Match header lists etag (or is "*").
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == etag || candidate == "*" {
			return true
		}
	}
	return false
}
