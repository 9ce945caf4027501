package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// recorder is a testing.TB that records Fatal and Skip instead of ending
// the goroutine.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatal(args ...any)                { r.fatal = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any) { r.skip = fmt.Sprintf(format, args...) }

// Without PostgreSQL, Start fails the test saying what to install, or
// skips it when RESH_TEST_NO_POSTGRES=1.
func TestNotInstalled(t *testing.T) {
	saved := libGlob
	libGlob = filepath.Join(t.TempDir(), "*", "bin")
	t.Cleanup(func() { libGlob = saved })
	t.Setenv("PATH", t.TempDir())

	r := &recorder{TB: t}
	t.Setenv(EnvSkip, "")
	assert.Empty(t, Start(r))
	assert.Contains(t, r.fatal, "PostgreSQL is not installed")
	assert.Contains(t, r.fatal, "apt-get install postgresql")
	assert.Contains(t, r.fatal, EnvSkip+"=1")
	assert.Empty(t, r.skip)

	r = &recorder{TB: t}
	t.Setenv(EnvSkip, "1")
	assert.Empty(t, Start(r))
	assert.Empty(t, r.fatal)
	assert.Contains(t, r.skip, EnvSkip)
}
