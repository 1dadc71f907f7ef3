// Package apicmd is the api program: configuration, wiring and lifecycle around httpapi.
package apicmd

import (
	"errors"
	"fmt"
	"time"

	"github.com/careerops/jobs/internal/auth"
)

// Config is the api's configuration, read from the environment by envconfig.
type Config struct {
	// DatabaseURL is the PostgreSQL URL (pgx syntax).
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true" desc:"The PostgreSQL URL (pgx syntax)."`
	// RabbitMQURL is the AMQP URL.
	RabbitMQURL string `envconfig:"RABBITMQ_URL" required:"true" desc:"The AMQP URL."`
	// JWTSecret is the HS256 secret of user tokens; at least 32 bytes.
	JWTSecret string `envconfig:"JWT_SECRET" required:"true" desc:"The HS256 secret of user tokens; at least 32 bytes."`
	// HTTPAddr is the listen address. Defaults to :8080.
	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8080" desc:"The listen address. Defaults to :8080."`
	// DatabaseMaxConns bounds the pool. Defaults to 16.
	DatabaseMaxConns int32 `envconfig:"DATABASE_MAX_CONNS" default:"16" desc:"Bounds the pool. Defaults to 16."`
	// ShutdownTimeout bounds the graceful stop. Defaults to 15s.
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s" desc:"Bounds the graceful stop. Defaults to 15s."`
	// UserRequestsPerMinute caps one user's API requests per minute on each replica (0: none).
	UserRequestsPerMinute int `envconfig:"USER_REQUESTS_PER_MINUTE" default:"300" desc:"Caps one user's API requests per minute on each api replica (0: no limit)."`
	// UserJobsPerMinute caps the cover letters one user may request per minute (0: none).
	UserJobsPerMinute int `envconfig:"USER_JOBS_PER_MINUTE" default:"10" desc:"Caps the cover letters one user may request per minute, across replicas (0: no limit)."`
	// UserTokensPerDay caps one user's LLM tokens per UTC day (0: none).
	UserTokensPerDay int `envconfig:"USER_TOKENS_PER_DAY" default:"200000" desc:"Caps one user's LLM tokens (input + output) per UTC day (0: no limit)."`
	// DevTokenEndpoint enables POST /dev/token, which mints tokens for anyone: development only.
	DevTokenEndpoint bool `envconfig:"DEV_TOKEN_ENDPOINT" default:"false" desc:"Enables POST /dev/token, which mints a token (admin if asked) for anyone: development only."`
	// JaegerUIURL links the ops page to traces, e.g. http://127.0.0.1:16686.
	JaegerUIURL string `envconfig:"JAEGER_UI_URL" desc:"Base URL of the Jaeger UI, for trace links on the ops page."`
	// PprofAddr, if set, serves Go's profiles there (e.g. 127.0.0.1:6060); off by default.
	PprofAddr string `envconfig:"PPROF_ADDR" desc:"If set, serves Go profiles (/debug/pprof) on this address, e.g. 127.0.0.1:6060."`
	// LogLevel is debug, info, warn or error. Defaults to info.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"One of debug, info, warn or error. Defaults to info."`
}

// Validate reports the first problem with c as one line.
func (c Config) Validate() error {
	switch {
	case len(c.JWTSecret) < auth.MinSecretBytes:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes", auth.MinSecretBytes)
	case c.HTTPAddr == "":
		return errors.New("HTTP_ADDR must not be empty")
	case c.DatabaseMaxConns < 2:
		return errors.New("DATABASE_MAX_CONNS must be at least 2")
	case c.ShutdownTimeout <= 0:
		return errors.New("SHUTDOWN_TIMEOUT must be positive")
	case c.UserRequestsPerMinute < 0 || c.UserJobsPerMinute < 0 || c.UserTokensPerDay < 0:
		return errors.New("USER_REQUESTS_PER_MINUTE, USER_JOBS_PER_MINUTE and USER_TOKENS_PER_DAY must not be negative")
	}
	return nil
}
