package email

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/config"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		port    int
	}{
		{name: "off", env: map[string]string{}, port: DefaultPort},
		{name: "STARTTLS by default", env: map[string]string{"SMTP_HOST": "smtp.example.com"}, port: 587},
		{name: "implicit TLS", env: map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_TLS": "tls"}, port: 465},
		{name: "Mailpit", env: map[string]string{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1025", "SMTP_TLS": "none"}, port: 1025},
		{name: "bad TLS", env: map[string]string{"SMTP_HOST": "h", "SMTP_TLS": "ssl"}, wantErr: "SMTP_TLS"},
		{name: "bad from", env: map[string]string{"SMTP_HOST": "h", "SMTP_FROM": "nobody"}, wantErr: "SMTP_FROM"},
		{name: "bad URL", env: map[string]string{"SMTP_HOST": "h", "PUBLIC_BASE_URL": "jobs.example.com"}, wantErr: "PUBLIC_BASE_URL"},
		{name: "password alone", env: map[string]string{"SMTP_HOST": "h", "SMTP_PASSWORD": "p"}, wantErr: "SMTP_USERNAME"},
		{name: "negative rate", env: map[string]string{"SMTP_HOST": "h", "EMAIL_PER_DOMAIN_PER_MINUTE": "-1"}, wantErr: "EMAIL_PER_DOMAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			if err := config.Load(func(k string) string { return tt.env[k] }, &cfg); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && cfg.port() != tt.port:
				t.Errorf("port %d, want %d", cfg.port(), tt.port)
			}
		})
	}
}

func TestConfigLogsNoPassword(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	cfg := DefaultConfig()
	cfg.Host, cfg.Username, cfg.Password = "smtp.example.com", "mailer", "hunter2-secret"
	slog.New(slog.NewJSONHandler(&b, nil)).Info("email", slog.Any("smtp", cfg))
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), `"password_set":true`) {
		t.Errorf("the log line: %s", b.String())
	}
}
