package ctlcmd

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/careerops/jobs/internal/auth"
	conf "github.com/careerops/jobs/internal/config"
)

// config is careeropsctl's environment: the variables the api and the worker read too (see
// CONTRACT.md), read the same way (package config). Each command requires only what it uses.
type config struct {
	// DatabaseURL is the PostgreSQL URL (pgx syntax). Required by migrate up, user add and dlq
	// requeue.
	DatabaseURL string `env:"DATABASE_URL"`
	// RabbitMQURL is the AMQP URL. Required by dlq list and dlq requeue.
	RabbitMQURL string `env:"RABBITMQ_URL"`
	// JWTSecret is the HS256 secret, at least auth.MinSecretBytes bytes. Required by token.
	JWTSecret string `env:"JWT_SECRET"`
}

// loadConfig reads a config from getenv.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	err := conf.Load(getenv, &c)
	return c, err
}

// need says which variables a command requires.
type need int

const (
	needDatabase need = 1 << iota
	needBroker
	needSecret
)

// config reads the environment and checks the variables the command needs, reporting
// every problem on one line.
func (e *env) config(n need) (config, error) {
	c, err := loadConfig(e.getenv)
	if err != nil {
		return c, err
	}
	var problems []string
	if n&needDatabase != 0 && strings.TrimSpace(c.DatabaseURL) == "" {
		problems = append(problems, "DATABASE_URL is required")
	}
	if n&needBroker != 0 && strings.TrimSpace(c.RabbitMQURL) == "" {
		problems = append(problems, "RABBITMQ_URL is required")
	}
	if n&needSecret != 0 {
		switch {
		case c.JWTSecret == "":
			problems = append(problems, "JWT_SECRET is required")
		case len(c.JWTSecret) < auth.MinSecretBytes:
			problems = append(problems, fmt.Sprintf("JWT_SECRET must be at least %d bytes", auth.MinSecretBytes))
		}
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("config: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// Shorter strings are not masked in errors: masking "ab" would garble the message and hide
// nothing worth hiding.
const minSecretMask = 4

var (
	userinfoPassword = regexp.MustCompile(`://[^:/@\s]*:([^@\s]+)@`)
	keywordPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|[^&\s]+)`)
)

// secretsIn lists the strings that must never appear in output: the JWT secret and the
// passwords inside the URLs (parsed, or found by pattern when the URL does not parse).
func secretsIn(c config) []string {
	var out []string
	add := func(s string) {
		if len(s) >= minSecretMask {
			out = append(out, s)
		}
	}
	add(c.JWTSecret)
	for _, raw := range []string{c.DatabaseURL, c.RabbitMQURL} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p)
				add(url.QueryEscape(p))
				add(url.PathEscape(p))
			}
		}
		for _, m := range userinfoPassword.FindAllStringSubmatch(raw, -1) {
			add(m[1])
		}
		for _, m := range keywordPassword.FindAllStringSubmatch(raw, -1) {
			add(m[1])
			add(strings.Trim(m[1], "'"))
		}
	}
	return out
}
