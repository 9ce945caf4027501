package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// sqliteBackend keeps the store in one SQLite file in WAL mode. One
// connection writes, through the writer goroutine, which commits the
// operations queued meanwhile in one transaction (group commit); a pool
// of read-only connections reads, concurrently with the writer.
type sqliteBackend struct {
	wdb, rdb *sql.DB
	wst, rst *stmtCache // their prepared statements
	hub      *hub
	maxBatch int

	reqs    chan *writeReq
	quit    chan struct{} // closed by close
	stopped chan struct{} // closed when the writer has returned
	once    sync.Once
}

// sqliteParams are the connection settings of both pools: wait up to 10 s
// for another process's lock rather than fail.
const sqliteParams = "?_busy_timeout=10000"

// openSQLite opens (creating) the database file at path and migrates it.
func openSQLite(ctx context.Context, path string, o Options) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Jobs hold their owners' programs: the file is private to the
	// master's user (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f.Close()
	// The writer: WAL, every commit synced to disk before it returns
	// (synchronous=FULL), foreign keys enforced, every transaction BEGIN
	// IMMEDIATE so that it takes the write lock at once.
	wdb, err := sql.Open("sqlite", path+sqliteParams+"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := migrateSQLite(ctx, wdb); err != nil {
		wdb.Close()
		return nil, err
	}
	rdb, err := sql.Open("sqlite", path+sqliteParams+"&_query_only=1")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	b := &sqliteBackend{
		wdb: wdb, rdb: rdb, wst: newStmtCache(wdb), rst: newStmtCache(rdb), hub: newHub(), maxBatch: o.MaxBatch,
		reqs: make(chan *writeReq, o.MaxBatch), quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	go b.writer()
	return &sqlStore{b: b, now: o.Now, hub: b.hub}, nil
}

// migrateSQLite migrates the schema in one BEGIN IMMEDIATE transaction,
// which another process opening the file at the same time waits for.
func migrateSQLite(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	if err := migrate(ctx, sqlQuerier{tx}, "sqlite"); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	return nil
}

// close stops the writer (operations still queued get ErrClosed) and
// closes both pools.
func (b *sqliteBackend) close() error {
	err := ErrClosed
	b.once.Do(func() {
		close(b.quit)
		<-b.stopped
		err = errors.Join(b.wst.close(), b.rst.close(), b.wdb.Close(), b.rdb.Close())
	})
	return err
}

// read runs fn in a read transaction: one snapshot of the database.
func (b *sqliteBackend) read(ctx context.Context, fn func(querier) error) error {
	select {
	case <-b.quit:
		return ErrClosed
	default:
	}
	// Queries seen for the first time are prepared once the connection
	// is back in the pool.
	defer b.rst.prepareQueued(context.WithoutCancel(ctx))
	tx, err := b.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
	return fn(sqlQuerier{cachedTx{tx, b.rst}})
}

// sqlRunner is what *sql.Tx and *sql.DB have in common.
type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlQuerier is a querier over database/sql.
type sqlQuerier struct{ r sqlRunner }

func (q sqlQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.r.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	return sqlRow{q.r.QueryRowContext(ctx, query, args...)}
}

func (q sqlQuerier) query(ctx context.Context, query string, args []any, each func(scanner) error) error {
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sqlRow maps sql.ErrNoRows to errNoRows.
type sqlRow struct{ r *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return err
}
