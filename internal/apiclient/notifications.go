package apiclient

import (
	"context"
	"net/http"

	"github.com/careerops/jobs/internal/job"
)

// Notifications reads the user's notification choice: GET /api/me/notifications.
func (c *Client) Notifications(ctx context.Context, token string) (job.Notifications, error) {
	var out job.Notifications
	_, err := c.call(ctx, http.MethodGet, "/api/me/notifications", token, nil, &out, http.StatusOK)
	return out, err
}

// SetEmailNotifications turns the user's emails on or off: PATCH /api/me/notifications.
func (c *Client) SetEmailNotifications(ctx context.Context, token string, on bool) (job.Notifications, error) {
	var out job.Notifications
	_, err := c.call(ctx, http.MethodPatch, "/api/me/notifications", token, job.NotificationsUpdate{Email: &on}, &out, http.StatusOK)
	return out, err
}
