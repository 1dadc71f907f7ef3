package ctlcmd_test

import (
	"regexp"
	"testing"

	"github.com/careerops/jobs/internal/testkit"
)

func TestMigrateUp_CreatesTheSchemaThenSaysUpToDate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testkit.NewEmptyDatabaseURL(t)}

	first := run(t, vars, "migrate", "up")
	if first.err != nil {
		t.Fatalf("first migrate up: %v", first.err)
	}
	if !regexp.MustCompile(`^(applied \d{5}_\w+\.sql \(\d+ms\)\n)+$`).MatchString(first.stdout) {
		t.Errorf("first migrate up printed %q, want one \"applied NAME (Nms)\" line per migration", first.stdout)
	}
	if !regexp.MustCompile(`(?m)^applied 00001_init\.sql `).MatchString(first.stdout) {
		t.Errorf("first migrate up printed %q, want 00001_init.sql applied", first.stdout)
	}

	second := run(t, vars, "migrate", "up")
	if second.err != nil {
		t.Fatalf("second migrate up: %v", second.err)
	}
	if second.stdout != "schema is up to date\n" {
		t.Errorf("second migrate up printed %q, want %q", second.stdout, "schema is up to date\n")
	}
}
