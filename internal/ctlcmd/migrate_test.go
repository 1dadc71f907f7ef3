package ctlcmd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/testkit"
)

// newEmptyDatabaseURL names a database that does not exist yet (migrate up creates it) and
// drops it when the test ends.
func newEmptyDatabaseURL(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "careerops_test_ctl_" + hex.EncodeToString(b)
	u, err := url.Parse(testkit.AdminDatabaseURL())
	if err != nil {
		t.Fatalf("admin URL: %v", err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, testkit.AdminDatabaseURL())
		if err != nil {
			t.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return u.String()
}

func TestMigrateUp_CreatesTheSchemaThenSaysUpToDate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": newEmptyDatabaseURL(t)}

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
