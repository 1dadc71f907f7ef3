package ctlcmd_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/careerops/jobs/internal/testkit"
)

func TestUserAdd_PrintsTheIDAndRefusesADuplicate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testkit.NewDatabaseURL(t)}
	idLine := regexp.MustCompile(`^[1-9][0-9]*\n$`)

	ada := run(t, vars, "user", "add", "--email", "ada@example.com")
	if ada.err != nil {
		t.Fatalf("user add: %v", ada.err)
	}
	if !idLine.MatchString(ada.stdout) {
		t.Fatalf("stdout = %q, want only the id", ada.stdout)
	}

	grace := run(t, vars, "user", "add", "--email=grace@example.com")
	if grace.err != nil {
		t.Fatalf("user add: %v", grace.err)
	}
	if !idLine.MatchString(grace.stdout) || grace.stdout == ada.stdout {
		t.Fatalf("second user's id = %q, want a new id (first was %q)", grace.stdout, ada.stdout)
	}

	again := run(t, vars, "user", "add", "--email", "ada@example.com")
	requireOneLineError(t, again.err)
	if !strings.Contains(again.err.Error(), "already exists") {
		t.Errorf("err = %q, want it to say the user already exists", again.err)
	}
	if again.stdout != "" {
		t.Errorf("stdout = %q, want nothing", again.stdout)
	}
}
