package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/careerops/jobs/internal/job"
)

// Created is the answer to a create.
type Created struct {
	job.Accepted
	// Replayed: the api answered 200 to a repeated Idempotency-Key, not 202.
	Replayed bool
	// Location is the job's status URL.
	Location string
}

// Create submits a job (idempotencyKey "" sends none): 202, or 200 for a replay.
func (c *Client) Create(ctx context.Context, token string, req job.CreateRequest, idempotencyKey string) (Created, error) {
	body, err := jsonBody(req)
	if err != nil {
		return Created{}, err
	}
	var header []string
	if idempotencyKey != "" {
		header = []string{"Idempotency-Key", idempotencyKey}
	}
	r, err := c.Do(ctx, http.MethodPost, "/api/cover-letter", token, body, header...)
	if err != nil {
		return Created{}, err
	}
	if r.Status != http.StatusAccepted && r.Status != http.StatusOK {
		return Created{}, errorOf(r)
	}
	out := Created{Replayed: r.Status == http.StatusOK, Location: r.Header.Get("Location")}
	if err := r.Decode(&out.Accepted); err != nil {
		return out, err
	}
	if out.JobID == "" {
		return out, fmt.Errorf("apiclient: answer %d without a jobId: %.200s", r.Status, r.Body)
	}
	return out, nil
}

// Status returns one job.
func (c *Client) Status(ctx context.Context, token, jobID string) (job.View, error) {
	return c.jobCall(ctx, http.MethodGet, "/api/cover-letter/status/"+url.PathEscape(jobID), token)
}

// jobCall calls an endpoint that answers 200 with one job.
func (c *Client) jobCall(ctx context.Context, method, path, token string) (job.View, error) {
	var v job.View
	_, err := c.call(ctx, method, path, token, nil, &v, http.StatusOK)
	return v, err
}

// ListQuery selects a page of jobs; zero values are the api's defaults.
type ListQuery struct {
	Limit  int
	Status job.Status
	Cursor string
}

// List returns one page of the user's jobs, newest first.
func (c *Client) List(ctx context.Context, token string, q ListQuery) (job.Page, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	if q.Status != "" {
		v.Set("status", string(q.Status))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	path := "/api/cover-letter/jobs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p job.Page
	_, err := c.call(ctx, http.MethodGet, path, token, nil, &p, http.StatusOK)
	return p, err
}

// ListAll returns every job of the user, newest first, following the cursor through at most
// pages pages of 100.
func (c *Client) ListAll(ctx context.Context, token string, pages int) ([]job.View, error) {
	var all []job.View
	q := ListQuery{Limit: 100}
	for range pages {
		p, err := c.List(ctx, token, q)
		if err != nil {
			return all, err
		}
		all = append(all, p.Jobs...)
		if p.NextCursor == "" {
			return all, nil
		}
		q.Cursor = p.NextCursor
	}
	return all, fmt.Errorf("apiclient: more than %d pages of jobs", pages)
}

// Cancel cancels a job that has not finished and returns it.
func (c *Client) Cancel(ctx context.Context, token, jobID string) (job.View, error) {
	return c.jobCall(ctx, http.MethodDelete, "/api/cover-letter/"+url.PathEscape(jobID), token)
}

// StreamToken returns a short-lived token for the job's event stream.
func (c *Client) StreamToken(ctx context.Context, token, jobID string) (job.StreamToken, error) {
	var st job.StreamToken
	_, err := c.call(ctx, http.MethodPost, "/api/cover-letter/"+url.PathEscape(jobID)+"/stream-token", token, nil, &st, http.StatusOK)
	return st, err
}

// DevToken signs in through POST /dev/token (the api runs with DEV_TOKEN_ENDPOINT=true).
func (c *Client) DevToken(ctx context.Context, req job.DevTokenRequest) (job.DevToken, error) {
	var t job.DevToken
	_, err := c.call(ctx, http.MethodPost, "/dev/token", "", req, &t, http.StatusOK)
	return t, err
}

// OpsOverview returns the ops page's data (an admin token).
func (c *Client) OpsOverview(ctx context.Context, token string) (job.OpsOverview, error) {
	var o job.OpsOverview
	_, err := c.call(ctx, http.MethodGet, "/api/ops/overview", token, nil, &o, http.StatusOK)
	return o, err
}

// Requeue sends dead letters back to work (an admin token).
func (c *Client) Requeue(ctx context.Context, token string, req job.RequeueRequest) (job.RequeueResult, error) {
	var res job.RequeueResult
	_, err := c.call(ctx, http.MethodPost, "/api/ops/dlq/requeue", token, req, &res, http.StatusOK)
	return res, err
}

func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	return b, nil
}
