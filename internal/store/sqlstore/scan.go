package sqlstore

import (
	"database/sql"
	"strconv"
	"strings"
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan and closes rows. It returns an empty,
// non-nil slice when there are no rows, so JSON shows [] rather than null.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := make([]T, 0)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// placeholders returns "$from, $from+1, …" for n arguments, for IN lists
// and multi-row VALUES, which database/sql cannot bind as one argument on
// both engines.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// params returns n placeholders for arguments from..from+n-1: "?, ?, …"
// on a dialect with AnonymousParams, else "$from, $from+1, …".
func (db *DB) params(from, n int) string {
	if !db.d.AnonymousParams {
		return placeholders(from, n)
	}
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// valueRows returns "(…), (…), …" for rows rows of cols arguments each,
// numbered from 1, for multi-row VALUES.
func (db *DB) valueRows(rows, cols int) string {
	var b strings.Builder
	b.Grow(rows * (cols*6 + 4))
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(db.params(1+r*cols, cols))
		b.WriteByte(')')
	}
	return b.String()
}

// castRows is valueRows with each column cast to its SQL type ("" for
// none), for VALUES used as a table, where PostgreSQL cannot infer a
// parameter's type from a column it is written to.
func (db *DB) castRows(rows int, types []string) string {
	var b strings.Builder
	b.Grow(rows * len(types) * 24)
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, typ := range types {
			if c > 0 {
				b.WriteString(", ")
			}
			p := "?"
			if !db.d.AnonymousParams {
				p = "$" + strconv.Itoa(n)
			}
			n++
			if typ == "" {
				b.WriteString(p)
				continue
			}
			b.WriteString("CAST(" + p + " AS " + typ + ")")
		}
		b.WriteByte(')')
	}
	return b.String()
}

// maxInList bounds the arguments of one IN list or multi-row insert,
// well under SQLite's (32766) and PostgreSQL's (65535) limits.
const maxInList = 500

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// eachRow calls fn for every row and closes rows.
func eachRow(rows *sql.Rows, fn func(scanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
