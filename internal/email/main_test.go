package email

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: a sender's connection, or
// the test SMTP server's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
