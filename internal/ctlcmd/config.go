package ctlcmd

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"github.com/careerops/jobs/internal/auth"
)

// config is careeropsctl's environment: the variables the api and the worker read too (see
// CONTRACT.md). Each command requires only what it uses.
//
// The envconfig tags name the variables, as in the other programs, but loadConfig fills the
// struct from the injected getenv rather than envconfig.Process, which reads the process
// environment and so could not be driven by tests.
type config struct {
	// DatabaseURL is the PostgreSQL URL (pgx syntax). Required by migrate up, user add and dlq
	// requeue.
	DatabaseURL string `envconfig:"DATABASE_URL"`
	// RabbitMQURL is the AMQP URL. Required by dlq list and dlq requeue.
	RabbitMQURL string `envconfig:"RABBITMQ_URL"`
	// JWTSecret is the HS256 secret, at least auth.MinSecretBytes bytes. Required by token.
	JWTSecret string `envconfig:"JWT_SECRET"`
}

// loadConfig fills a config from getenv, one string field per envconfig tag.
func loadConfig(getenv func(string) string) config {
	var c config
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if name := v.Type().Field(i).Tag.Get("envconfig"); name != "" {
			v.Field(i).SetString(getenv(name))
		}
	}
	return c
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
	c := loadConfig(e.getenv)
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
