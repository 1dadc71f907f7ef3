package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/cli"
)

type Inner struct {
	Level string `env:"TEST_LEVEL" help:"The level."`
}

type deeper struct {
	Name string `env:"TEST_NAME" help:"The name."`
}

type testConfig struct {
	URL     string        `env:"TEST_URL,required" help:"The URL."`
	Timeout time.Duration `env:"TEST_TIMEOUT" flag:"timeout" help:"Bounds a call."`
	Count   int           `env:"TEST_COUNT" help:"How many."`
	Rate    float64       `env:"TEST_RATE" flag:"rate" help:"A rate."`
	Inner
	Nested deeper
}

func defaults() testConfig {
	return testConfig{Timeout: time.Minute, Count: 4, Rate: 0.5, Inner: Inner{Level: "info"}}
}

func (c *testConfig) Validate() error {
	if c.Count < 1 {
		return errors.New("TEST_COUNT must be at least 1")
	}
	return nil
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    testConfig
		wantErr string
	}{
		{"defaults stay when unset or empty", map[string]string{"TEST_URL": "u", "TEST_COUNT": ""},
			testConfig{URL: "u", Timeout: time.Minute, Count: 4, Rate: 0.5, Inner: Inner{Level: "info"}}, ""},
		{"the environment overlays", map[string]string{"TEST_URL": "u", "TEST_TIMEOUT": "2s", "TEST_COUNT": "0", "TEST_LEVEL": "debug", "TEST_NAME": "n"},
			testConfig{URL: "u", Timeout: 2 * time.Second, Rate: 0.5, Inner: Inner{Level: "debug"}, Nested: deeper{Name: "n"}}, ""},
		{"required", nil, testConfig{}, "config: TEST_URL is required"},
		{"bad duration names the variable", map[string]string{"TEST_URL": "u", "TEST_TIMEOUT": "soon"}, testConfig{},
			`config: TEST_TIMEOUT: time: invalid duration "soon"`},
		{"bad number names the variable", map[string]string{"TEST_URL": "u", "TEST_COUNT": "x"}, testConfig{}, "config: TEST_COUNT: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaults()
			err := Load(env(tt.env), &cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Load = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg != tt.want {
				t.Fatalf("Load = %+v, want %+v", cfg, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	p := Program{Name: "prog", About: "Does things."}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		want      func(testConfig) bool
		wantErr   string
		wantUsage bool
	}{
		{"flags beat the environment", []string{"-timeout", "3s"}, map[string]string{"TEST_URL": "u", "TEST_TIMEOUT": "2s", "TEST_RATE": "0.25"},
			func(c testConfig) bool { return c.Timeout == 3*time.Second && c.Rate == 0.25 }, "", false},
		{"bad flag", []string{"-nope"}, map[string]string{"TEST_URL": "u"}, nil, "flag provided but not defined: -nope", true},
		{"bad flag without environment", []string{"-timeout", "soon"}, nil, nil, "-timeout", true},
		{"argument", []string{"extra"}, map[string]string{"TEST_URL": "u"}, nil, `unexpected arguments: ["extra"]`, true},
		{"validation", nil, map[string]string{"TEST_URL": "u", "TEST_COUNT": "0"}, nil, "config: TEST_COUNT must be at least 1", false},
		{"environment", nil, nil, nil, "config: TEST_URL is required", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaults()
			var out bytes.Buffer
			help, err := Parse(p, tt.args, env(tt.env), &out, &cfg)
			if help || out.Len() > 0 {
				t.Fatalf("Parse printed usage: %q", out.String())
			}
			if tt.wantErr == "" {
				if err != nil || !tt.want(cfg) {
					t.Fatalf("Parse = %v, %+v", err, cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, cli.ErrUsage) != tt.wantUsage {
				t.Fatalf("Parse = %v, want %q (usage error: %v)", err, tt.wantErr, tt.wantUsage)
			}
		})
	}
}

func TestHelpPrintsEverySettingWithItsDefault(t *testing.T) {
	t.Parallel()
	cfg := defaults()
	var out bytes.Buffer
	help, err := Parse(Program{Name: "prog", About: "Does things."}, []string{"--help"},
		env(map[string]string{"TEST_TIMEOUT": "2s"}), &out, &cfg)
	if !help || err != nil {
		t.Fatalf("Parse(--help) = %v, %v", help, err)
	}
	for _, want := range []string{
		"Usage: prog [flags]\n\nDoes things.\n",
		"  TEST_URL (required)\n      The URL.\n",
		"  -timeout, TEST_TIMEOUT (default 1m0s)\n      Bounds a call.\n", // the default, not the environment
		"  TEST_COUNT (default 4)\n",
		"  -rate, TEST_RATE (default 0.5)\n",
		"  TEST_LEVEL (default \"info\")\n      The level.\n",
		"  TEST_NAME\n      The name.\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
