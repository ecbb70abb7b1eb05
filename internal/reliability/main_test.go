package reliability_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

var (
	buildOnce sync.Once
	buildDir  string
	ringdBin  string
	buildErr  error
)

// TestMain removes the binary built for the tests and checks that the
// tests' own goroutines (SDK connections, proxies, log readers) all ended.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary builds cmd/ringd once per test binary and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ringd-reliability-")
		if buildErr != nil {
			return
		}
		ringdBin = filepath.Join(buildDir, "ringd")
		goTool := "go"
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", ringdBin, "github.com/ringd/ringd/cmd/ringd")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ringd: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ringdBin
}
