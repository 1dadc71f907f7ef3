package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// JobStatus is a job as GET /api/cover-letter/status/:jobId shows it.
type JobStatus struct {
	JobID       string     `json:"jobId"`
	Status      string     `json:"status"`
	Tone        string     `json:"tone"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
	CoverLetter string     `json:"coverLetter,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// Final reports whether the job will not change any more.
func (s JobStatus) Final() bool {
	return s.Status == "completed" || s.Status == "failed" || s.Status == "cancelled"
}

// API reads jobs back from the api.
type API struct {
	BaseURL string
	Client  *http.Client
}

func (a API) get(ctx context.Context, token, path string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.BaseURL, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: %d %.300s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w: %.300s", path, err, body)
	}
	return resp.StatusCode, nil
}

// Status returns one job; the int is the HTTP status (0 on a transport error).
func (a API) Status(ctx context.Context, token, jobID string) (JobStatus, int, error) {
	var s JobStatus
	code, err := a.get(ctx, token, "/api/cover-letter/status/"+url.PathEscape(jobID), &s)
	return s, code, err
}

// List returns every job of a user, newest first, following the cursor (at most pages pages of
// 100).
func (a API) List(ctx context.Context, token string, pages int) ([]JobStatus, error) {
	var all []JobStatus
	cursor := ""
	for range pages {
		var page struct {
			Jobs       []JobStatus `json:"jobs"`
			NextCursor string      `json:"nextCursor"`
		}
		path := "/api/cover-letter/jobs?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if _, err := a.get(ctx, token, path, &page); err != nil {
			return all, err
		}
		all = append(all, page.Jobs...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
	return all, fmt.Errorf("more than %d pages of jobs", pages)
}

// WaitFinal polls the accepted jobs of rep until each is final or ctx ends, with up to conc
// requests at once, and returns the last status seen of each (by job id).
func (a API) WaitFinal(ctx context.Context, tokens []string, rep *Report, every time.Duration, conc int) map[string]JobStatus {
	out := map[string]JobStatus{}
	var mu sync.Mutex
	pending := map[string]JobResult{}
	for _, j := range rep.Jobs {
		if j.JobID != "" {
			pending[j.JobID] = j
		}
	}
	for len(pending) > 0 && ctx.Err() == nil {
		sem := make(chan struct{}, max(conc, 1))
		var wg sync.WaitGroup
		for id, j := range pending {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s, _, err := a.Status(ctx, tokens[j.User], id)
				if err != nil {
					return
				}
				mu.Lock()
				out[id] = s
				mu.Unlock()
			}()
		}
		wg.Wait()
		for id := range pending {
			if out[id].Final() {
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			break
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return out
}
