package testkit

import (
	"net/http/httptest"
	"testing"

	"github.com/careerops/jobs/internal/fakeopenai"
)

// StartFakeOpenAI serves a fakeopenai.Server configured by cfg until the test ends and
// returns it with its URL (an OpenAI client's base URL is that + "/v1"; Azure's is the URL).
func StartFakeOpenAI(t testing.TB, cfg fakeopenai.Config) (*fakeopenai.Server, string) {
	t.Helper()
	fake, err := fakeopenai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}
