// Package loadgen is a load client for the CareerOps api: it submits cover-letter jobs at a
// set pace over several users, the way a careful client does (an Idempotency-Key per job,
// retries of 503s, 429s and lost connections with that same key, Retry-After honoured up to a
// cap), and records what became of every request. It can then poll the jobs until they are
// final. The fault suite (tools/chaos) and `tools/cmd/loadgen` use it; so can benchmarks.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/careerops/jobs/internal/apiclient"
	"github.com/careerops/jobs/internal/testkit"
)

// Request is the body of one job.
type Request struct {
	JobDescription string `json:"jobDescription"`
	CVText         string `json:"cvText"`
	Tone           string `json:"tone,omitempty"`
}

// Config describes a load.
type Config struct {
	// BaseURL is the api, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Tokens are the users' bearer tokens; job i is sent as user i mod len(Tokens).
	Tokens []string
	// Jobs is how many jobs to submit.
	Jobs int
	// Rate is the pace of new jobs per second; 0 sends as fast as Concurrency allows.
	Rate float64
	// Concurrency bounds the jobs being submitted at once (retries included). Defaults to 8.
	Concurrency int
	// Body returns job i's request. Defaults to a small generated job.
	Body func(i int) Request
	// KeyPrefix starts every Idempotency-Key (the key of job i is KeyPrefix-i). Defaults to a
	// random prefix. Set NoIdempotencyKey to send none.
	KeyPrefix        string
	NoIdempotencyKey bool
	// MaxTries bounds the requests sent for one job. Defaults to 100.
	MaxTries int
	// RetryWait is the first wait before a retry, doubled each time up to MaxRetryWait.
	// Defaults to 100ms.
	RetryWait time.Duration
	// MaxRetryWait caps every wait, Retry-After included. Defaults to 5s.
	MaxRetryWait time.Duration
	// GiveUpAfter bounds the time spent on one job. Defaults to 2m.
	GiveUpAfter time.Duration
	// RequestTimeout bounds one HTTP request. Defaults to 10s.
	RequestTimeout time.Duration
	// OnAnswer, if set, is called after every HTTP answer or transport error (status 0).
	OnAnswer func(i, status int)
	// OnAccepted, if set, is called when a job is accepted (202) or found replayed (200).
	OnAccepted func(r JobResult)
	// Client sends the requests. Defaults to a client with keep-alive for Concurrency.
	Client *http.Client

	api *apiclient.Client // on BaseURL with Client
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Body == nil {
		c.Body = DefaultBody
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "loadgen-" + testkit.RandomHex(6)
	}
	if c.MaxTries <= 0 {
		c.MaxTries = 100
	}
	if c.RetryWait <= 0 {
		c.RetryWait = 100 * time.Millisecond
	}
	if c.MaxRetryWait <= 0 {
		c.MaxRetryWait = 5 * time.Second
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 2 * time.Minute
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = NewHTTPClient(c.Concurrency)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.api = apiclient.New(c.BaseURL, c.Client)
	return c
}

// NewHTTPClient returns a client keeping up to conns connections alive to the api.
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns * 2
	t.MaxIdleConnsPerHost = conns * 2
	t.Proxy = nil
	return &http.Client{Transport: t}
}

// DefaultBody is a small job whose description names its index.
func DefaultBody(i int) Request {
	tones := []string{"", "professional", "friendly", "concise"}
	return Request{
		JobDescription: fmt.Sprintf("Job %d: senior Go engineer for a payments platform; PostgreSQL, RabbitMQ, on-call.", i),
		CVText:         "Ten years of Go and PostgreSQL; built message-driven billing systems; led an SRE team.",
		Tone:           tones[i%len(tones)],
	}
}

// Outcome is what became of one job's submission.
type Outcome string

// The outcomes of a submission.
const (
	// Accepted: the api answered 202.
	Accepted Outcome = "accepted"
	// Replayed: the api answered 200 to a retry: an earlier try was stored but its answer lost.
	Replayed Outcome = "replayed"
	// Rejected: the api answered a final error (4xx other than 429, or 500).
	Rejected Outcome = "rejected"
	// GaveUp: tries or time ran out on retryable answers.
	GaveUp Outcome = "gave_up"
)

// JobResult is one job's submission.
type JobResult struct {
	Index   int     `json:"index"`
	User    int     `json:"user"` // index into Config.Tokens
	Key     string  `json:"idempotencyKey,omitempty"`
	JobID   string  `json:"jobId,omitempty"`
	Outcome Outcome `json:"outcome"`
	Tries   int     `json:"tries"`
	// Status is the last HTTP status (0: transport error).
	Status int `json:"status"`
	// Error is the last error body or transport error of a job not accepted.
	Error string `json:"error,omitempty"`
	// Sent is when the first try went out, Answered when the last answer came.
	Sent     time.Time `json:"sent"`
	Answered time.Time `json:"answered"`
}

// Report is what a load did.
type Report struct {
	Jobs []JobResult `json:"jobs"`
	// Answers counts every HTTP answer by status (0: transport errors).
	Answers  map[int]int   `json:"answers"`
	Duration time.Duration `json:"duration"`
}

// Count returns how many jobs ended with outcome o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, j := range r.Jobs {
		if j.Outcome == o {
			n++
		}
	}
	return n
}

// Run submits cfg.Jobs jobs and returns when each has an outcome or ctx ends (jobs not sent
// by then are GaveUp with ctx's error).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("loadgen: no tokens")
	}
	if cfg.Jobs <= 0 {
		return nil, errors.New("loadgen: jobs must be positive")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("loadgen: no base URL")
	}
	cfg = cfg.withDefaults()
	rep := &Report{Jobs: make([]JobResult, cfg.Jobs), Answers: map[int]int{}}
	var mu sync.Mutex // guards rep.Answers
	answered := func(i, status int) {
		mu.Lock()
		rep.Answers[status]++
		mu.Unlock()
		if cfg.OnAnswer != nil {
			cfg.OnAnswer(i, status)
		}
	}

	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rep.Jobs[i] = submit(ctx, cfg, i, answered)
				if cfg.OnAccepted != nil && (rep.Jobs[i].Outcome == Accepted || rep.Jobs[i].Outcome == Replayed) {
					cfg.OnAccepted(rep.Jobs[i])
				}
			}
		}()
	}
	sent := 0
	for i := range cfg.Jobs {
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case next <- i:
			sent++
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	for i := sent; i < cfg.Jobs; i++ {
		rep.Jobs[i] = JobResult{Index: i, User: i % len(cfg.Tokens), Outcome: GaveUp, Error: "not sent: " + context.Cause(ctx).Error()}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// submit sends job i until it has an outcome.
func submit(ctx context.Context, cfg Config, i int, answered func(i, status int)) JobResult {
	res := JobResult{Index: i, User: i % len(cfg.Tokens), Sent: time.Now()}
	if !cfg.NoIdempotencyKey {
		res.Key = cfg.KeyPrefix + "-" + strconv.Itoa(i)
	}
	body, err := json.Marshal(cfg.Body(i))
	if err != nil {
		res.Outcome, res.Error = Rejected, err.Error()
		return res
	}
	deadline := res.Sent.Add(cfg.GiveUpAfter)
	wait := cfg.RetryWait
	for {
		res.Tries++
		status, retryAfter, answer, err := post(ctx, cfg, cfg.Tokens[res.User], res.Key, body)
		res.Status, res.Answered = status, time.Now()
		answered(i, status)
		switch {
		case err == nil && (status == http.StatusAccepted || status == http.StatusOK):
			var out struct {
				JobID string `json:"jobId"`
			}
			if err := json.Unmarshal(answer, &out); err != nil || out.JobID == "" {
				res.Outcome, res.Error = Rejected, fmt.Sprintf("%d without a jobId: %.200s", status, answer)
				return res
			}
			res.JobID, res.Outcome, res.Error = out.JobID, Accepted, ""
			if status == http.StatusOK {
				res.Outcome = Replayed
			}
			return res
		case err != nil:
			res.Error = err.Error()
		case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests ||
			status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
			res.Error = fmt.Sprintf("%d: %.200s", status, answer)
		default:
			res.Outcome, res.Error = Rejected, fmt.Sprintf("%d: %.500s", status, answer)
			return res
		}
		if res.Tries >= cfg.MaxTries || time.Now().After(deadline) || ctx.Err() != nil {
			res.Outcome = GaveUp
			return res
		}
		d := min(max(wait/2+time.Duration(mrand.Int64N(int64(wait/2)+1)), retryAfter), cfg.MaxRetryWait)
		wait = min(2*wait, cfg.MaxRetryWait)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// post sends one try and returns the status (0 with err on a transport error), the
// Retry-After it asked for and the body.
func post(ctx context.Context, cfg Config, token, key string, body []byte) (int, time.Duration, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	r, err := cfg.api.Do(ctx, http.MethodPost, "/api/cover-letter", token, body, header...)
	if err != nil {
		return 0, 0, nil, err
	}
	return r.Status, r.RetryAfter(), r.Body, nil
}
