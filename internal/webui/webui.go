// Package webui holds the two web pages the api serves: "/" to request a cover letter and
// watch it being written, and "/ops" for operators (queues, failures, the dead-letter queue).
// They are plain HTML, CSS and ES modules embedded in the binary: no CDN, no build step.
package webui

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
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

//go:embed static
var static embed.FS

// FS returns the embedded files: index.html, ops.html and assets/*.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil { // only if the embed directive above changes
		panic(err)
	}
	return sub
}

// Routes serves the pages on r: GET / (index.html), GET /ops (ops.html) and GET /assets/*.
// Fiber answers HEAD on the same routes. Call it before any catch-all handler.
func Routes(r fiber.Router) {
	files := load(FS())
	r.Get("/", serve(files["index.html"]))
	r.Get("/ops", serve(files["ops.html"]))
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

// load reads every embedded file once; the set never changes while the program runs.
func load(fsys fs.FS) map[string]*file {
	files := map[string]*file{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		files[name] = &file{
			body:        body,
			contentType: contentType(name),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil { // embedded files are always readable
		panic(fmt.Errorf("webui: reading the embedded files: %w", err))
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
		c.Set(fiber.HeaderContentSecurityPolicy, ContentSecurityPolicy)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
		c.Set(fiber.HeaderXFrameOptions, "DENY")
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
