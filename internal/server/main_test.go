package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: every
// server a test starts must be shut down completely by its cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
