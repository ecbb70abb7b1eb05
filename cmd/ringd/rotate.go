package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/server"
)

// runRotate re-encrypts every secret at rest under a new master key. The
// server must be stopped; the data directory's lock makes sure of it on
// this machine.
func runRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("ringd rotate-master-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("RINGD_DATA_DIR", cfg.DataDir), "the server's data directory ($RINGD_DATA_DIR)")
	fs.StringVar(&cfg.Database, "database", os.Getenv("RINGD_DATABASE"), "postgres://… when the server uses PostgreSQL ($RINGD_DATABASE)")
	fs.StringVar(&cfg.MasterKeyFile, "master-key-file", os.Getenv("RINGD_MASTER_KEY_FILE"), "the current master key (default: master.key in the data directory) ($RINGD_MASTER_KEY_FILE)")
	newKey := fs.String("new-key-file", "", "the new master key; generated (0600) when the file does not exist")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ringd rotate-master-key --new-key-file FILE [--data-dir DIR] [--database URL] [--master-key-file FILE]

Re-encrypts every secret at rest (app secret keys, certificates and keys)
under a new master key, in one transaction. Stop the server first. Then
start it with --master-key-file FILE (or move FILE over the old key), and
destroy the old key once the server runs.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	res, err := server.RotateMasterKey(ctx, cfg, *newKey)
	if err != nil {
		return err
	}
	if res.Created {
		fmt.Fprintf(stdout, "generated a new master key in %s\n", res.NewKeyFile)
	}
	fmt.Fprintf(stdout, "re-encrypted %d secrets under %s\nstart the server with --master-key-file %s (or RINGD_MASTER_KEY_FILE); the old key opens nothing any more\n",
		res.Resealed, res.NewKeyFile, res.NewKeyFile)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
