package store

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	abs, err := filepath.Abs("jobs.db")
	require.NoError(t, err)
	for _, c := range []struct {
		url, dir     string
		kind, target string
	}{
		{"postgres://u@h:5432/db?sslmode=disable", "", kindPostgres, "postgres://u@h:5432/db?sslmode=disable"},
		{"postgresql://h/db", "", kindPostgres, "postgresql://h/db"},
		{"/var/lib/resh/jobs.db", "", kindSQLite, "/var/lib/resh/jobs.db"},
		{"jobs.db", "", kindSQLite, abs},
		{"sqlite:/x/y.db", "", kindSQLite, "/x/y.db"},
		{"sqlite:///x/y.db", "", kindSQLite, "/x/y.db"},
		{"sqlite:jobs.db", "", kindSQLite, abs},
		{"", "/home/u/.resh", kindSQLite, "/home/u/.resh/jobs.db"},
		{"/odd/dir://x.db", "", kindSQLite, "/odd/dir:/x.db"},
	} {
		kind, target, err := parseURL(c.url, c.dir)
		require.NoError(t, err, c.url)
		assert.Equal(t, c.kind, kind, c.url)
		assert.Equal(t, c.target, target, c.url)
	}
	for _, bad := range []string{"", "sqlite:", "mysql://h/db", "jobs.db?mode=ro", "a\x00b", "sqlite://"} {
		_, _, err := parseURL(bad, "")
		assert.ErrorIs(t, err, ErrInvalid, "%q", bad)
	}
}

// FuzzParseURL: any string is either refused with ErrInvalid or names a
// backend: PostgreSQL URLs as given, SQLite files as clean absolute
// paths the driver's options cannot be slipped into.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"", "postgres://h/db", "sqlite:x.db", "/a/b.db", "x://y", "sqlite://", "a?b", "./../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, url string) {
		kind, target, err := parseURL(url, "/home")
		if err != nil {
			assert.ErrorIs(t, err, ErrInvalid)
			return
		}
		switch kind {
		case kindPostgres:
			assert.Equal(t, url, target)
		case kindSQLite:
			assert.True(t, filepath.IsAbs(target), target)
			assert.Equal(t, filepath.Clean(target), target)
			assert.False(t, strings.ContainsAny(target, "?\x00"), target)
		default:
			t.Fatalf("kind %q", kind)
		}
	})
}
