package webui

import (
	"bytes"
	"html/template"

	"github.com/gofiber/fiber/v2"
)

// UnsubscribeState is what the unsubscribe page says.
type UnsubscribeState string

// The unsubscribe page's states.
const (
	// UnsubscribeConfirm asks to confirm with a button (a POST): a mail scanner that follows
	// the link turns nothing off.
	UnsubscribeConfirm UnsubscribeState = "confirm"
	// UnsubscribeDone says that emails are off.
	UnsubscribeDone UnsubscribeState = "done"
	// UnsubscribeInvalid says that the link is invalid or expired.
	UnsubscribeInvalid UnsubscribeState = "invalid"
)

// unsubscribePage is parsed once; the embedded template is fixed at build time.
var unsubscribePage = template.Must(template.ParseFS(embedded, "pages/head.html", "pages/unsubscribe.html"))

// SendUnsubscribePage answers with the unsubscribe page in state (token goes into the
// confirmation's form), with status and the pages' security headers. It is not cached: it
// may hold a token.
func SendUnsubscribePage(c *fiber.Ctx, status int, state UnsubscribeState, token string) error {
	var b bytes.Buffer
	if err := unsubscribePage.ExecuteTemplate(&b, "unsubscribe", struct {
		State UnsubscribeState
		Token string
	}{state, token}); err != nil {
		return err
	}
	securityHeaders(c)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, "text/html; charset=utf-8")
	return c.Status(status).Send(b.Bytes())
}
