package main

import (
	"context"
	"io"
	"os"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/server"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.LoadServe(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	logger := server.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	srv, err := server.New(ctx, cfg, server.Options{Stdout: stdout, Logger: logger})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
