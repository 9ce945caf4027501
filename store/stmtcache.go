package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStmts bounds a stmtCache: the store's queries are a few dozen
// texts, but a list filter makes one per number of states asked for.
const maxCachedStmts = 256

// stmtCache keeps the statements prepared on one *sql.DB by their text,
// so that SQLite parses each query once per connection instead of at
// every call (a third of a master's CPU per job went to sqlite3Prepare
// before). database/sql prepares a Stmt again on each connection that
// runs it, once, and keeps it; a transaction uses it through Tx.Stmt.
//
// A query seen for the first time runs unprepared and is queued: it is
// prepared by prepareQueued, which callers run when they hold no
// connection (the writer's pool has one: preparing inside its
// transaction would wait for ever).
type stmtCache struct {
	db *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	queued map[string]bool
	closed bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt), queued: make(map[string]bool)}
}

// get returns query's statement, or nil (run it unprepared) when it is
// not prepared yet (it is then queued), the cache is full or closed.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stmts[query]
	if !ok && !c.closed && len(c.stmts)+len(c.queued) < maxCachedStmts {
		c.queued[query] = true
	}
	return s
}

// prepareQueued prepares the queries queued by get. A query that does not
// prepare is left to run unprepared (its error shows there).
func (c *stmtCache) prepareQueued(ctx context.Context) {
	c.mu.Lock()
	if len(c.queued) == 0 || c.closed {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.queued))
	for q := range c.queued {
		queries = append(queries, q)
	}
	c.mu.Unlock()
	for _, q := range queries {
		s, err := c.db.PrepareContext(ctx, q)
		c.mu.Lock()
		delete(c.queued, q)
		switch {
		case err != nil:
		case c.closed || c.stmts[q] != nil:
			_ = s.Close()
		default:
			c.stmts[q] = s
		}
		c.mu.Unlock()
	}
}

// close closes every statement; get returns nil after it.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

// cachedTx runs a transaction's queries through the cache's statements.
type cachedTx struct {
	tx *sql.Tx
	c  *stmtCache
}

// stmt is query's statement within the transaction, nil when the cache
// has none for it yet.
func (t cachedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	s := t.c.get(query)
	if s == nil {
		return nil
	}
	return t.tx.StmtContext(ctx, s)
}

func (t cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
