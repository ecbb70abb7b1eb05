package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/credentials"
)

// The command is wired and checks its arguments; internal/server's
// TestRotateMasterKey covers a rotation with data and a restart.
func TestRotateMasterKeyCommand(t *testing.T) {
	ctx := t.Context()
	if err := run(ctx, []string{"rotate-master-key"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--new-key-file") {
		t.Fatalf("without --new-key-file: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := run(ctx, []string{"rotate-master-key", "--data-dir", dir, "--new-key-file", filepath.Join(t.TempDir(), "k")}, io.Discard, io.Discard); err == nil {
		t.Fatal("a data directory that does not exist was accepted")
	}
	if _, err := credentials.LoadOrCreateMasterKey(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	newKey := filepath.Join(t.TempDir(), "new.key")
	var out bytes.Buffer
	if err := run(ctx, []string{"rotate-master-key", "--data-dir", dir, "--new-key-file", newKey}, &out, io.Discard); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if !strings.Contains(out.String(), "generated a new master key") || !strings.Contains(out.String(), "re-encrypted 0 secrets") {
		t.Fatalf("output: %s", out.String())
	}
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key: %v %v", fi, err)
	}
}
