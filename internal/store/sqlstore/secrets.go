package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"github.com/ringd/ringd/internal/store"
)

// Every sealed column, for re-encryption under a new master key. The
// UPDATEs compare the old value, so a secret that changed since it was
// read fails the whole transaction instead of being overwritten.
var sealedColumns = []struct {
	kind, query, update string
}{
	{
		store.SealedAppSecret,
		`SELECT sdk_app_id, sdk_app_id, secret_sealed FROM apps WHERE secret_sealed IS NOT NULL ORDER BY sdk_app_id`,
		`UPDATE apps SET secret_sealed = $2 WHERE sdk_app_id = $1 AND secret_sealed = $3`,
	},
	{
		store.SealedAppPreviousSecret,
		`SELECT sdk_app_id, sdk_app_id, previous_secret_sealed FROM apps WHERE previous_secret_sealed IS NOT NULL ORDER BY sdk_app_id`,
		`UPDATE apps SET previous_secret_sealed = $2 WHERE sdk_app_id = $1 AND previous_secret_sealed = $3`,
	},
	{
		store.SealedCertificate,
		`SELECT sdk_app_id, id, secret_sealed FROM certificates WHERE secret_sealed IS NOT NULL ORDER BY id`,
		`UPDATE certificates SET secret_sealed = $2 WHERE id = $1 AND secret_sealed = $3`,
	},
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func sealedSecrets(ctx context.Context, q queryer) ([]store.SealedSecret, error) {
	out := make([]store.SealedSecret, 0)
	for _, c := range sealedColumns {
		rows, err := q.QueryContext(ctx, c.query)
		if err != nil {
			return nil, err
		}
		list, err := collect(rows, func(row scanner) (store.SealedSecret, error) {
			s := store.SealedSecret{Kind: c.kind}
			err := row.Scan(&s.SDKAppID, &s.ID, &s.Sealed)
			return s, err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			if len(s.Sealed) > 0 {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// SealedSecrets lists every sealed secret the store holds.
func (db *DB) SealedSecrets(ctx context.Context) ([]store.SealedSecret, error) {
	list, err := sealedSecrets(ctx, db.r)
	return list, db.fail("sealed secrets", err)
}

// ResealSecrets reads every sealed secret and writes back what reseal
// makes of it, all in one write transaction.
func (db *DB) ResealSecrets(ctx context.Context, reseal func(store.SealedSecret) ([]byte, error)) (int, error) {
	n := 0
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n = 0
		list, err := sealedSecrets(ctx, tx)
		if err != nil {
			return err
		}
		update := map[string]string{}
		for _, c := range sealedColumns {
			update[c.kind] = c.update
		}
		for _, s := range list {
			sealed, err := reseal(s)
			if err != nil {
				return fmt.Errorf("%s %d: %w", s.Kind, s.ID, err)
			}
			if len(sealed) == 0 || bytes.Equal(sealed, s.Sealed) {
				return fmt.Errorf("%s %d: reseal returned nothing new", s.Kind, s.ID)
			}
			res, err := tx.ExecContext(ctx, update[s.Kind], s.ID, sealed, s.Sealed)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil {
				return err
			} else if k != 1 {
				return fmt.Errorf("%w: %s %d changed while it was resealed", store.ErrConflict, s.Kind, s.ID)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, db.fail("reseal secrets", err)
	}
	return n, nil
}
