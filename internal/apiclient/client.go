// Package apiclient is a typed client of the CareerOps HTTP API (docs/api.md), with the wire
// types of internal/job: the system tests, the load generator, the fault suite and the
// benchmark all talk to the api through it. An answer other than the one a call expects is an
// *Error decoded from the JSON error body; Do gives the raw answer to tests that check it.
package apiclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBody bounds an answer read into memory.
const maxBody = 4 << 20

// Client calls one api. The token of each call is an argument: a load speaks for many users.
type Client struct {
	base string
	http *http.Client
}

// New is a client of the api at baseURL (e.g. http://127.0.0.1:8080); hc nil is
// http.DefaultClient.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc}
}

// BaseURL is the api's address.
func (c *Client) BaseURL() string { return c.base }

// Do sends a request with a bearer token (none if "") and a JSON body (none if nil), plus
// headers given as name, value pairs, and returns the answer whatever its status; the error
// is a transport error.
func (c *Client) Do(ctx context.Context, method, path, token string, body []byte, header ...string) (*Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: read the answer to %d: %w", method, path, resp.StatusCode, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// call sends a request and decodes an answer with one of the want statuses into out (if not
// nil); another status is an *Error.
func (c *Client) call(ctx context.Context, method, path, token string, in, out any, want ...int) (*Response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = jsonBody(in); err != nil {
			return nil, err
		}
	}
	r, err := c.Do(ctx, method, path, token, body)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if r.Status == w {
			if out == nil {
				return r, nil
			}
			return r, r.Decode(out)
		}
	}
	return r, errorOf(r)
}
