package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/careerops/jobs/internal/job"
)

// RequestExport asks for an export of the user's data: POST /api/me/export (202 a new one,
// 200 the one still being written).
func (c *Client) RequestExport(ctx context.Context, token string) (job.Export, error) {
	var out job.Export
	_, err := c.call(ctx, http.MethodPost, "/api/me/export", token, nil, &out, http.StatusAccepted, http.StatusOK)
	return out, err
}

// Export reads an export of the user's: GET /api/me/exports/:id.
func (c *Client) Export(ctx context.Context, token, id string) (job.Export, error) {
	var out job.Export
	_, err := c.call(ctx, http.MethodGet, "/api/me/exports/"+url.PathEscape(id), token, nil, &out, http.StatusOK)
	return out, err
}

// DownloadExport returns a file of a ready export: format json or zip.
func (c *Client) DownloadExport(ctx context.Context, token, id, format string) (*Response, error) {
	return c.call(ctx, http.MethodGet, "/api/me/exports/"+url.PathEscape(id)+"/download?format="+url.QueryEscape(format),
		token, nil, nil, http.StatusOK)
}

// EraseMe deletes everything kept about the user and ends their tokens: DELETE /api/me.
func (c *Client) EraseMe(ctx context.Context, token string) error {
	_, err := c.call(ctx, http.MethodDelete, "/api/me", token, nil, nil, http.StatusNoContent)
	return err
}
