package calls

import (
	"errors"

	"github.com/ringd/ringd/internal/store"
)

// StoreUnavailable reports whether err comes from a database that cannot
// be reached (or written) now. Such errors are not remembered as a
// request's answer, so the request may be retried with the same ID.
func StoreUnavailable(err error) bool { return errors.Is(err, store.ErrUnavailable) }
