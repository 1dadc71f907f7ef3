package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/cli"
)

// fakeAPI answers POST /api/cover-letter by script: per Idempotency-Key, the n-th try gets
// script[key][n] ("503", "drop" for a dropped connection, "202", "200", "400").
type fakeAPI struct {
	mu     sync.Mutex
	script map[string][]string
	tries  map[string]int
	tokens map[string]int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	n := f.tries[key]
	f.tries[key]++
	f.tokens[r.Header.Get("Authorization")]++
	steps := f.script[key]
	f.mu.Unlock()
	step := "202"
	if n < len(steps) {
		step = steps[n]
	}
	switch step {
	case "drop":
		conn, _, _ := http.NewResponseController(w).Hijack()
		_ = conn.Close()
	case "503":
		w.Header().Set("Retry-After", "5")
		http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
	case "400":
		http.Error(w, `{"error":{"code":"invalid_request"}}`, http.StatusBadRequest)
	default:
		code := http.StatusAccepted
		if step == "200" {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"jobId": "job-" + key, "status": "pending"})
	}
}

func TestRunRetriesWithTheSameKeyAndRecordsOutcomes(t *testing.T) {
	api := &fakeAPI{tries: map[string]int{}, tokens: map[string]int{}, script: map[string][]string{
		"k-0": {"503", "drop", "200"}, // stored on an earlier try whose answer was lost
		"k-1": {"503", "202"},
		"k-2": {"400"},
		"k-3": {"503", "503", "503"},
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var accepted []string
	var mu sync.Mutex
	rep, err := Run(context.Background(), Config{
		BaseURL: srv.URL, Tokens: []string{"a", "b"}, Jobs: 5, Concurrency: 3, KeyPrefix: "k",
		MaxTries: 3, RetryWait: time.Millisecond, MaxRetryWait: 20 * time.Millisecond,
		OnAccepted: func(r JobResult) {
			mu.Lock()
			accepted = append(accepted, r.JobID)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		outcome Outcome
		tries   int
		status  int
	}{{Replayed, 3, 200}, {Accepted, 2, 202}, {Rejected, 1, 400}, {GaveUp, 3, 503}, {Accepted, 1, 202}}
	// Go's transport itself resends a request with an Idempotency-Key whose reused connection
	// dropped, so job 0's dropped try may not reach Run.
	if rep.Jobs[0].Tries == 2 && rep.Answers[0] == 0 {
		want[0].tries = 2
		rep.Answers[0] = 1
	}
	for i, w := range want {
		got := rep.Jobs[i]
		if got.Outcome != w.outcome || got.Tries != w.tries || got.Status != w.status {
			t.Errorf("job %d: %s after %d tries (last %d), want %s after %d (last %d); error %q",
				i, got.Outcome, got.Tries, got.Status, w.outcome, w.tries, w.status, got.Error)
		}
		if (w.outcome == Accepted || w.outcome == Replayed) && got.JobID != "job-"+got.Key {
			t.Errorf("job %d: id %q", i, got.JobID)
		}
	}
	if len(accepted) != 3 {
		t.Errorf("OnAccepted saw %v, want 3 jobs", accepted)
	}
	if rep.Answers[503] != 5 || rep.Answers[0] != 1 || rep.Answers[202] != 2 || rep.Answers[200] != 1 || rep.Answers[400] != 1 {
		t.Errorf("answers = %v", rep.Answers)
	}
	if api.tokens["Bearer a"] == 0 || api.tokens["Bearer b"] == 0 {
		t.Errorf("tokens used: %v, want both users", api.tokens)
	}
	if s := Summary(rep, nil); !strings.Contains(s, "accepted=2 replayed=1 rejected=1 gave_up=1") {
		t.Errorf("summary %q", s)
	}
}

func TestRunRetriesTransportErrors(t *testing.T) {
	srv := httptest.NewServer(&fakeAPI{tries: map[string]int{}, tokens: map[string]int{},
		script: map[string][]string{"k-0": {"drop", "drop", "drop", "drop"}}})
	defer srv.Close()
	rep, err := Run(context.Background(), Config{BaseURL: srv.URL, Tokens: []string{"a"}, Jobs: 1, KeyPrefix: "k",
		MaxTries: 4, RetryWait: time.Millisecond, MaxRetryWait: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if j := rep.Jobs[0]; j.Outcome != GaveUp || j.Status != 0 || j.Error == "" || rep.Answers[0] == 0 {
		t.Errorf("got %+v, answers %v; want gave up on transport errors", j, rep.Answers)
	}
}

func TestRunPacesAndStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(&fakeAPI{tries: map[string]int{}, tokens: map[string]int{}})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := Run(ctx, Config{BaseURL: srv.URL, Tokens: []string{"a"}, Jobs: 100, Rate: 20})
	if err != nil {
		t.Fatal(err)
	}
	// 20 jobs a second for 0.3 s: about 6 sent, the rest not.
	if sent := rep.Count(Accepted); sent < 3 || sent > 10 {
		t.Errorf("%d jobs sent in 0.3 s at 20/s", sent)
	}
	if rep.Count(Accepted)+rep.Count(GaveUp) != 100 {
		t.Errorf("outcomes do not add up: %+v", rep.Answers)
	}
}

func TestMainFlags(t *testing.T) {
	env := func(string) string { return "" }
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"--help"}, env, &out, &out); err != nil || !strings.Contains(out.String(), "-rate") {
		t.Fatalf("--help: %v\n%s", err, out.String())
	}
	for _, args := range [][]string{{"--nope"}, {}, {"-token", "t", "-jobs", "0"}, {"-token", "t", "extra"}} {
		if err := Main(context.Background(), args, env, &out, &out); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}

	srv := httptest.NewServer(&fakeAPI{tries: map[string]int{}, tokens: map[string]int{}})
	defer srv.Close()
	out.Reset()
	err := Main(context.Background(), []string{"-api", srv.URL, "-jobs", "4", "-rate", "0"},
		func(k string) string { return map[string]string{"LOADGEN_TOKENS": "x, y"}[k] }, &out, &out)
	if err != nil || !strings.Contains(out.String(), "jobs=4 accepted=4") {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
}
