package main

import (
	"io"
	"strings"
	"testing"
)

// TestRunRejectsUnknownProfile: --profile and FAKEOPENAI_PROFILE name a provider profile.
func TestRunRejectsUnknownProfile(t *testing.T) {
	noEnv := func(string) string { return "" }
	badEnv := func(k string) string {
		if k == "FAKEOPENAI_PROFILE" {
			return "bedrock"
		}
		return ""
	}
	for _, tt := range []struct {
		args   []string
		getenv func(string) string
	}{
		{[]string{"-profile", "bedrock"}, noEnv},
		{nil, badEnv},
	} {
		err := run(t.Context(), tt.args, tt.getenv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "unknown profile") {
			t.Errorf("run(%q) = %v, want an unknown profile error", tt.args, err)
		}
	}
}
