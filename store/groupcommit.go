package store

import (
	"context"
	"database/sql"
	"fmt"
)

// writeReq is one write operation queued for SQLite's writer.
type writeReq struct {
	ctx  context.Context
	fn   func(wtx) error
	done chan error // gets the operation's outcome once committed
}

// write queues fn for the writer and waits until the transaction it ran
// in has committed (or failed).
func (b *sqliteBackend) write(ctx context.Context, fn func(wtx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-b.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once the writer has the operation, it runs it (unless ctx ended
	// before its batch began) and says how it went: wait for that, so
	// that fn never runs after write returned, and a change committed is
	// never reported as canceled.
	select {
	case err := <-r.done:
		return err
	case <-b.stopped:
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// writeOne is write: the batch is the transaction.
func (b *sqliteBackend) writeOne(ctx context.Context, fn func(wtx) error) error {
	return b.write(ctx, fn)
}

// writer is the one goroutine that writes: it takes the first queued
// operation and every other one queued by then (up to maxBatch), runs
// them in one transaction, each in a savepoint of its own so that one
// failing undoes only itself, commits once (one sync to disk for all of
// them), and only then tells each caller its outcome. While it commits,
// the next batch gathers: the busier, the larger the batches.
func (b *sqliteBackend) writer() {
	defer close(b.stopped)
	batch := make([]*writeReq, 0, b.maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.quit:
			b.refuse()
			return
		}
	gather:
		for len(batch) < b.maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		b.commit(batch)
		// The connection is free again: prepare what the batch ran for
		// the first time.
		b.wst.prepareQueued(context.Background())
	}
}

// refuse answers ErrClosed to the operations still queued at close.
func (b *sqliteBackend) refuse() {
	for {
		select {
		case r := <-b.reqs:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// sqliteTx is the wtx of one operation in a batch. Its statements run
// without the caller's context: interrupting a statement would roll back
// the whole batch's transaction, not only this operation.
type sqliteTx struct {
	sqlQuerier
	ids []int64
}

func (t *sqliteTx) changed(id int64) { t.ids = append(t.ids, id) }

func (t *sqliteTx) exec(_ context.Context, query string, args ...any) (int64, error) {
	return t.sqlQuerier.exec(context.Background(), query, args...)
}

func (t *sqliteTx) queryRow(_ context.Context, query string, args ...any) scanner {
	return t.sqlQuerier.queryRow(context.Background(), query, args...)
}

func (t *sqliteTx) query(_ context.Context, query string, args []any, each func(scanner) error) error {
	return t.sqlQuerier.query(context.Background(), query, args, each)
}

// commit runs one batch in one transaction and answers every caller.
func (b *sqliteBackend) commit(batch []*writeReq) {
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	tx, err := b.wdb.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("store: begin: %w", err))
		return
	}
	var changed []int64
	ok := 0
	savepoints := len(batch) > 1
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		t := &sqliteTx{sqlQuerier: sqlQuerier{cachedTx{tx, b.wst}}}
		if savepoints {
			if _, err := tx.Exec("SAVEPOINT op"); err != nil {
				tx.Rollback() //nolint:errcheck // failing already
				fail(fmt.Errorf("store: savepoint: %w", err))
				return
			}
		}
		errs[i] = r.fn(t)
		if savepoints {
			if errs[i] != nil {
				if _, err := tx.Exec("ROLLBACK TO op"); err != nil {
					tx.Rollback() //nolint:errcheck // failing already
					fail(fmt.Errorf("store: rollback to savepoint: %w", err))
					return
				}
			}
			if _, err := tx.Exec("RELEASE op"); err != nil {
				tx.Rollback() //nolint:errcheck // failing already
				fail(fmt.Errorf("store: release savepoint: %w", err))
				return
			}
		}
		if errs[i] == nil {
			ok++
			changed = append(changed, t.ids...)
		}
	}
	// With one operation and no savepoint, a failure is undone by
	// rolling the transaction back.
	finish := tx.Commit
	if ok == 0 {
		finish = tx.Rollback
	}
	if err := finish(); err != nil && err != sql.ErrTxDone {
		fail(fmt.Errorf("store: commit: %w", err))
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
	b.hub.notify(changed...)
}
