package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestFakeOpenAIServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs bytes.Buffer // read once run has returned
	ready := make(chan string, 1)
	done := make(chan error, 1)
	run := FakeOpenAI(Options{Ready: func(addr string) { ready <- addr }})
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--retry-after", "3s"},
			env(map[string]string{"FAKEOPENAI_RATELIMIT_RATE": "1"}), io.Discard, &logs)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %s", resp.Status)
	}

	// The flags and the environment configure the server.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer k")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("completion: %s, Retry-After %q; want 429 and 3", resp.Status, resp.Header.Get("Retry-After"))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() = %v, want nil after cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if !strings.Contains(logs.String(), `"msg":"fakeopenai: stopped"`) {
		t.Errorf("no stop log line:\n%s", logs.String())
	}
}

func TestFakeOpenAIRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"bad duration", []string{"--latency", "soon"}, nil, "-latency"},
		{"rate above 1", []string{"--fail-rate", "2"}, nil, "fail rate"},
		{"negative retry-after", []string{"--retry-after", "-1s"}, nil, "retry-after"},
		{"unknown flag", []string{"--nope"}, nil, "-nope"},
		{"positional argument", []string{"extra"}, nil, "unexpected arguments"},
		{"bad environment", nil, map[string]string{"FAKEOPENAI_SEED": "x"}, "FAKEOPENAI_SEED"},
		{"flag beats environment", []string{"--fail-rate", "3"}, map[string]string{"FAKEOPENAI_FAIL_RATE": "0.5"}, "got 3"},
		{"unusable address", []string{"--addr", "256.0.0.1:1"}, nil, "256.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := FakeOpenAI(Options{})(t.Context(), tt.args, env(tt.env), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("run() = %v, want a one-line error about %q", err, tt.wantErr)
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("run printed %q %q, want only the returned error", stdout.String(), stderr.String())
			}
		})
	}
}

func TestFakeOpenAIHelpPrintsUsage(t *testing.T) {
	var stdout bytes.Buffer
	if err := FakeOpenAI(Options{})(t.Context(), []string{"--help"}, env(nil), &stdout, io.Discard); err != nil {
		t.Fatalf("run(--help) = %v, want nil", err)
	}
	for _, flag := range []string{"-addr", "-latency", "-fail-rate", "-ratelimit-rate", "-retry-after", "-seed"} {
		if !strings.Contains(stdout.String(), flag) {
			t.Errorf("usage lacks %s:\n%s", flag, stdout.String())
		}
	}
}

// --profile and FAKEOPENAI_PROFILE name a provider profile; another name is refused at start.
func TestFakeOpenAIRejectsAnUnknownProfile(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--profile", "bedrock"}, nil},
		{nil, map[string]string{"FAKEOPENAI_PROFILE": "bedrock"}},
	} {
		err := FakeOpenAI(Options{})(t.Context(), tt.args, env(tt.env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "unknown profile") {
			t.Errorf("run(%q, %v) = %v, want an unknown profile error", tt.args, tt.env, err)
		}
	}
}
