package store

import (
	"context"
	"errors"
	"time"
)

// errNoRows is what a backend's scanner returns for a query that found no
// row, whatever its driver calls it.
var errNoRows = errors.New("store: no rows")

// scanner is one result row.
type scanner interface{ Scan(dest ...any) error }

// querier runs statements, with PostgreSQL-style $N placeholders (the
// SQLite driver takes them too): a transaction, or a pool for reads.
type querier interface {
	// exec runs a statement and returns how many rows it changed.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// queryRow runs a query for at most one row; Scan returns errNoRows
	// when there is none.
	queryRow(ctx context.Context, query string, args ...any) scanner
	// query runs a query and calls each for every row, stopping at the
	// first error.
	query(ctx context.Context, query string, args []any, each func(scanner) error) error
}

// wtx is a write transaction: a querier that also collects the jobs it
// changed, to notify watchers once it commits.
type wtx interface {
	querier
	changed(id int64)
}

// backend is what differs between databases: how transactions are run,
// and how changes reach the watchers of other Store values.
type backend interface {
	// write runs fn in a write transaction and commits it when fn returns
	// nil; the jobs passed to changed are notified after the commit.
	// When fn fails, nothing it did is kept and its error is returned.
	write(ctx context.Context, fn func(wtx) error) error
	// writeOne is write for an fn that runs a single statement, which
	// is then its own transaction (PostgreSQL: no BEGIN and COMMIT
	// round trips).
	writeOne(ctx context.Context, fn func(wtx) error) error
	// read runs fn on one consistent snapshot.
	read(ctx context.Context, fn func(querier) error) error
	// close releases the backend.
	close() error
}

// dialect is the SQL that differs between databases.
type dialect struct {
	// forUpdate follows a SELECT that locks the rows it reads until the
	// transaction ends: " FOR UPDATE", or "" where one writer at a time
	// holds the whole database (SQLite).
	forUpdate string
	// skipLocked follows a SELECT that locks what it reads and passes
	// over rows another transaction holds.
	skipLocked string
}

// sqlStore is the Store over any backend: every operation is written
// once, in SQL both databases run.
type sqlStore struct {
	b   backend
	d   dialect
	now func() time.Time
	hub *hub
}

// Watch implements Store.
func (s *sqlStore) Watch(id int64) (<-chan struct{}, func()) { return s.hub.watch(id) }

// Close implements Store.
func (s *sqlStore) Close() error { return s.b.close() }

// toNanos is how times are stored: Unix nanoseconds, 0 for the zero time.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of toNanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// stamp is t as the store keeps it (UTC, nanoseconds, no monotonic
// reading), so that what a method returns equals what Get reads later.
func stamp(t time.Time) time.Time { return fromNanos(toNanos(t)) }

// blob is b as a statement argument: nil (SQL NULL) for a nil slice.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
