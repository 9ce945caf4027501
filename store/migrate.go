package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrations holds each backend's schema changes: migrations/BACKEND/
// NNNN_what.sql, applied in the order of NNNN, each once. A released
// file never changes: a change to the schema is a new file.
//
//go:embed migrations
var migrations embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	stmts   []string
}

// loadMigrations returns the backend's migrations in order.
func loadMigrations(backend string) ([]migration, error) {
	dir := path.Join("migrations", backend)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration %s/%s: not named NNNN_what.sql", dir, e.Name())
		}
		text, err := fs.ReadFile(migrations, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), stmts: splitSQL(string(text))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// splitSQL cuts a migration into its statements: each ends with a ';'
// at the end of a line, outside a $$-quoted body. Comment lines ("--")
// are dropped.
func splitSQL(text string) []string {
	var (
		stmts  []string
		cur    strings.Builder
		quoted bool // inside $$ ... $$
	)
	for line := range strings.Lines(text) {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.Count(line, "$$")%2 == 1 {
			quoted = !quoted
		}
		if !quoted && strings.HasSuffix(strings.TrimSpace(stripComment(line)), ";") {
			stmts = append(stmts, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// stripComment drops a trailing "-- ..." comment from a line of SQL (our
// migrations put no "--" in strings).
func stripComment(line string) string {
	if i := strings.Index(line, "--"); i >= 0 {
		return line[:i]
	}
	return line
}

// migrate brings the schema in tx up to the last of the backend's
// migrations, recording each in schema_version. The caller holds the
// lock that keeps two processes from migrating at once, and commits.
func migrate(ctx context.Context, tx querier, backend string) error {
	ms, err := loadMigrations(backend)
	if err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: schema_version: %w", err)
	}
	var current int64
	if err := tx.queryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&current); err != nil {
		return fmt.Errorf("store: schema_version: %w", err)
	}
	if current > int64(len(ms)) {
		return fmt.Errorf("%w (schema version %d, this resh knows up to %d)", ErrSchemaNewer, current, len(ms))
	}
	for _, m := range ms[current:] {
		for _, stmt := range m.stmts {
			if _, err := tx.exec(ctx, stmt); err != nil {
				return fmt.Errorf("store: migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.exec(ctx, "INSERT INTO schema_version (version, name, applied) VALUES ($1, $2, $3)",
			m.version, m.name, toNanos(time.Now())); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}
