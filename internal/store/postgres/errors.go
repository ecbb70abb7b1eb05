package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringd/ringd/internal/store"
)

// classify maps PostgreSQL SQLSTATEs and connection failures to the
// store's sentinel errors.
func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil // the caller's own deadline, not the database's health
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return classifyState(pe.Code)
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		pgconn.SafeToRetry(err):
		return store.ErrUnavailable
	}
	return nil
}

func classifyState(code string) error {
	switch {
	case code == "23505": // unique_violation
		return store.ErrConflict
	case code == "23503": // foreign_key_violation: the row's app does not exist
		return store.ErrNotFound
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", code == "57P02", code == "57P03", // shutting down, starting up
		code == "53300": // too_many_connections
		return store.ErrUnavailable
	}
	return nil
}
