package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"resh/store/pgtest"
)

// testBackend is one database the conformance suite runs on.
type testBackend struct {
	name string
	// url makes a new empty store for t.
	url func(t testing.TB) string
	// exec runs raw SQL on the store at url, for what no method does
	// (forging a newer schema).
	exec func(t testing.TB, url, query string)
	// count runs a raw query for one number.
	count func(t testing.TB, url, query string) int64
	// shared tells whether a change through one Store value notifies the
	// watchers of another (LISTEN/NOTIFY).
	shared bool
}

// backends are both databases.
var backends = []testBackend{
	{
		name: "sqlite",
		url:  func(t testing.TB) string { return filepath.Join(t.TempDir(), "jobs.db") },
		exec: func(t testing.TB, url, query string) {
			db, err := sql.Open("sqlite", url)
			require.NoError(t, err)
			defer db.Close()
			_, err = db.Exec(query)
			require.NoError(t, err)
		},
		count: func(t testing.TB, url, query string) int64 {
			db, err := sql.Open("sqlite", url)
			require.NoError(t, err)
			defer db.Close()
			var n int64
			require.NoError(t, db.QueryRow(query).Scan(&n))
			return n
		},
	},
	{
		name: "postgres",
		url:  func(t testing.TB) string { return pgtest.Start(t) },
		exec: func(t testing.TB, url, query string) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, query)
			require.NoError(t, err)
		},
		count: func(t testing.TB, url, query string) int64 {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			var n int64
			require.NoError(t, conn.QueryRow(ctx, query).Scan(&n))
			return n
		},
		shared: true,
	},
}

// clock is a settable clock for Options.Now.
type clock struct{ ns atomic.Int64 }

// newClock returns a clock at a fixed moment.
func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// Now is the clock's time.
func (c *clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Add moves the clock on by d.
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// env is one conformance test's store: its URL and clock.
type env struct {
	t     *testing.T
	b     testBackend
	url   string
	clock *clock
}

// newEnv makes a new empty store on b.
func newEnv(t *testing.T, b testBackend) *env {
	return &env{t: t, b: b, url: b.url(t), clock: newClock()}
}

// open opens a Store value on the env's database, closed at the test's
// end.
func (e *env) open() Store {
	e.t.Helper()
	s, err := Open(context.Background(), e.url, &Options{Now: e.clock.Now})
	require.NoError(e.t, err)
	e.t.Cleanup(func() { s.Close() })
	return s
}

// hello is a typical job.
func hello(owner string) Job {
	return Job{Owner: owner, Lang: "python", Name: "hello.py", Args: []string{"a", "b c"},
		Source: []byte("print('hello')\n"), Limits: []byte(`{"wall":"3m0s"}`)}
}

// submit submits n hello jobs and returns them.
func submit(t testing.TB, s Store, n int, owner string) []Job {
	t.Helper()
	jobs := make([]Job, n)
	for i := range jobs {
		j, err := s.Submit(context.Background(), hello(owner))
		require.NoError(t, err)
		jobs[i] = j
	}
	return jobs
}

// waitSignal waits for a value on ch, failing the test after a while.
func waitSignal(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no notice of %s within 10 s", what)
	}
}

// noSignal checks that ch holds no value now.
func noSignal(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("unexpected notice: %s", what)
	default:
	}
}

// waitFor and pollEvery bound the waits for a condition that no channel
// announces (require.Eventually).
const (
	waitFor   = 10 * time.Second
	pollEvery = time.Millisecond
)
