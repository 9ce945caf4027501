package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A test's own server answers queries, each Start is a new empty
// database, and the server and its directory are gone after the test.
func TestStart(t *testing.T) {
	var dir string
	t.Run("server", func(t *testing.T) {
		ctx := context.Background()
		url1, url2 := Start(t), Start(t)
		assert.NotEqual(t, url1, url2)
		conn, err := pgx.Connect(ctx, url1)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n))
		assert.Zero(t, n)
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir))
	})
	if dir != "" {
		_, err := os.Stat(dir)
		assert.True(t, os.IsNotExist(err), "the server's directory %s is left behind", dir)
	}
}
