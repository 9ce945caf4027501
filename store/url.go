package store

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The kinds of store a URL names.
const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// parseURL tells which backend url names and what to open it with: the
// SQLite file's absolute path, or the PostgreSQL connection string as is.
// dir is Options.Dir, for an empty url.
func parseURL(url, dir string) (kind, target string, err error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return kindPostgres, url, nil
	case url == "":
		if dir == "" {
			return "", "", fmt.Errorf("%w: no store given: a file path, sqlite:PATH or postgres://HOST/DATABASE", ErrInvalid)
		}
		url = filepath.Join(dir, DefaultFile)
	case strings.HasPrefix(url, "sqlite://"):
		url = strings.TrimPrefix(url, "sqlite://")
	case strings.HasPrefix(url, "sqlite:"):
		url = strings.TrimPrefix(url, "sqlite:")
	default:
		if i := strings.Index(url, "://"); i > 0 && !strings.ContainsAny(url[:i], "/.") {
			return "", "", fmt.Errorf("%w: unknown store %q: give a file path, sqlite:PATH or postgres://HOST/DATABASE", ErrInvalid, url[:i+3])
		}
	}
	if url == "" {
		return "", "", fmt.Errorf("%w: sqlite: without a path", ErrInvalid)
	}
	// The SQLite driver reads what follows a '?' as options, and NUL
	// cannot be in a path.
	if strings.ContainsAny(url, "?\x00") {
		return "", "", fmt.Errorf("%w: SQLite path %q: '?' and NUL are not allowed in it", ErrInvalid, url)
	}
	abs, err := filepath.Abs(url)
	if err != nil {
		return "", "", fmt.Errorf("%w: SQLite path %q: %v", ErrInvalid, url, err)
	}
	return kindSQLite, abs, nil
}
