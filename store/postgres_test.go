package store

import (
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"resh/store/pgtest"
)

// When a master's LISTEN connection is cut, its watchers are told (they
// may have missed notices), and it listens again: the other master's
// later changes still reach it.
func TestPostgresListenerReconnects(t *testing.T) {
	url := pgtest.Start(t)
	quiet := &Options{Logger: slog.New(slog.DiscardHandler)} // the cut is logged
	s1, err := Open(ctx, url, quiet)
	require.NoError(t, err)
	defer s1.Close()
	s2, err := Open(ctx, url, quiet)
	require.NoError(t, err)
	defer s2.Close()
	j, err := s2.Submit(ctx, hello("alice"))
	require.NoError(t, err)

	ch, stop := s1.Watch(j.ID)
	defer stop()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var cut int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+pgChannel+`'`).Scan(&cut))
	require.Equal(t, 2, cut, "both masters' listeners")
	waitSignal(t, ch, "the lost connection")

	// Once both listen again (polled, within a bound), a change by s2
	// reaches s1's watcher.
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN `+pgChannel+`'`).Scan(&n)
		return err == nil && n == 2
	}, waitFor, 20*time.Millisecond, "the listeners did not come back")
	_, err = s2.Cancel(ctx, j.ID, "", "bye")
	require.NoError(t, err)
	waitSignal(t, ch, "s2's change after the reconnection")
}
