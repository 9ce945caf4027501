package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgChannel is the LISTEN/NOTIFY channel on which every write
// transaction announces, at its commit, the ids of the jobs it changed.
const pgChannel = "resh_jobs"

// pgQueuedPayload is the notice on pgChannel of a job that became queued
// (beside the one with its id): the trigger of migration 0002.
const pgQueuedPayload = "queued"

// pgMigrationLock is the advisory lock key that serialises migrations
// of masters opening one database at once.
const pgMigrationLock = 0x7265736801 // "resh" 1

// pgBackend keeps the store in PostgreSQL through a pgx pool. Each
// operation is one transaction; row locks (FOR UPDATE, SKIP LOCKED)
// keep masters sharing the database from handling one job twice. A
// connection of its own LISTENs for the changes other masters make.
type pgBackend struct {
	pool   *pgxpool.Pool
	hub    *hub
	log    *slog.Logger
	cancel context.CancelFunc // stops the listener
	done   chan struct{}      // closed when the listener has returned
	closed chan struct{}
	once   sync.Once
}

// openPostgres connects to the database at url, migrates it, and starts
// listening for changes.
func openPostgres(ctx context.Context, url string, o Options) (Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	b := &pgBackend{pool: pool, hub: newHub(), log: o.Logger, cancel: cancel,
		done: make(chan struct{}), closed: make(chan struct{})}
	ready := make(chan error, 1)
	go b.listen(lctx, cfg.ConnConfig, ready)
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		b.close() //nolint:errcheck // failing already
		return nil, fmt.Errorf("store: listen: %w", err)
	}
	return &sqlStore{b: b, d: dialect{forUpdate: " FOR UPDATE", skipLocked: " FOR UPDATE SKIP LOCKED"},
		now: o.Now, hub: b.hub}, nil
}

// migratePostgres migrates the schema in one transaction holding an
// advisory lock, which another master migrating at the same time waits
// for.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit, a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pgMigrationLock)); err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	if err := migrate(ctx, pgQuerier{tx}, "postgres"); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	return nil
}

// listen keeps a connection LISTENing on pgChannel and passes the ids it
// hears to the hub. The first outcome goes to ready. After a lost
// connection it tells every watcher (notices may have been missed) and
// connects again, waiting longer each time up to 5 s.
func (b *pgBackend) listen(ctx context.Context, cfg *pgx.ConnConfig, ready chan<- error) {
	defer close(b.done)
	wait := 100 * time.Millisecond
	for {
		err := b.listenOnce(ctx, cfg, func() {
			if ready != nil {
				ready <- nil
				ready = nil
			}
		})
		if ready != nil { // never listened: Open fails
			ready <- err
			return
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("store: listening for changes", "err", err, "retry in", wait)
		b.hub.notifyAll()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// listenOnce connects, LISTENs (then calls listening), and passes on
// notifications until the connection fails.
func (b *pgBackend) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background()) //nolint:errcheck // dropping it
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == pgQueuedPayload {
			b.hub.notify(QueuedJobs)
		} else if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			b.hub.notify(id)
		}
	}
}

// close stops the listener and closes the pool.
func (b *pgBackend) close() error {
	err := ErrClosed
	b.once.Do(func() {
		close(b.closed)
		b.cancel()
		<-b.done
		b.pool.Close()
		err = nil
	})
	return err
}

// isClosed reports whether close was called.
func (b *pgBackend) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// write runs fn in a transaction. The jobs table's trigger announces
// each change on pgChannel, and PostgreSQL delivers the notices at
// commit, and only then.
func (b *pgBackend) write(ctx context.Context, fn func(wtx) error) error {
	if b.isClosed() {
		return ErrClosed
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit, a no-op
	t := &pgTx{pgQuerier: pgQuerier{tx}}
	if err := fn(t); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	b.hub.notify(t.ids...)
	return nil
}

// writeOne runs fn's single statement on the pool: a transaction of its
// own, in one round trip.
func (b *pgBackend) writeOne(ctx context.Context, fn func(wtx) error) error {
	if b.isClosed() {
		return ErrClosed
	}
	t := &pgTx{pgQuerier: pgQuerier{b.pool}}
	if err := fn(t); err != nil {
		return err
	}
	b.hub.notify(t.ids...)
	return nil
}

// read runs fn in a read-only REPEATABLE READ transaction: one snapshot.
func (b *pgBackend) read(ctx context.Context, fn func(querier) error) error {
	if b.isClosed() {
		return ErrClosed
	}
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read only: nothing to keep
	return fn(pgQuerier{tx})
}

// pgTx is the wtx of one PostgreSQL transaction.
type pgTx struct {
	pgQuerier
	ids []int64
}

func (t *pgTx) changed(id int64) { t.ids = append(t.ids, id) }

// pgRunner is what a pgx transaction and pool have in common.
type pgRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgQuerier is a querier over a pgx transaction or pool.
type pgQuerier struct{ tx pgRunner }

func (q pgQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q pgQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	return pgRow{q.tx.QueryRow(ctx, query, args...)}
}

func (q pgQuerier) query(ctx context.Context, query string, args []any, each func(scanner) error) error {
	rows, err := q.tx.Query(ctx, query, args...)
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

// pgRow maps pgx.ErrNoRows to errNoRows.
type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}
