package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Both backends have the same numbered migrations, each cut into whole
// statements (a function body between $$ stays one).
func TestMigrationFiles(t *testing.T) {
	lite, err := loadMigrations("sqlite")
	require.NoError(t, err)
	pg, err := loadMigrations("postgres")
	require.NoError(t, err)
	require.Equal(t, len(lite), len(pg), "one schema, one numbering")
	for i := range lite {
		assert.Equal(t, lite[i].name, pg[i].name)
	}
	for _, m := range append(lite, pg...) {
		for _, stmt := range m.stmts {
			assert.True(t, strings.HasSuffix(stmt, ";"), "%s: %q", m.name, stmt)
			assert.Equal(t, 0, strings.Count(stmt, "$$")%2, "%s: %q", m.name, stmt)
		}
	}
	var fn string
	for _, stmt := range pg[0].stmts {
		if strings.HasPrefix(stmt, "CREATE FUNCTION") {
			fn = stmt
		}
	}
	assert.Contains(t, fn, "pg_notify")
	assert.True(t, strings.HasSuffix(fn, "$$;"), fn)
}

func TestSplitSQL(t *testing.T) {
	got := splitSQL("-- a comment\nCREATE TABLE a (x INT); -- trailing\n\nCREATE FUNCTION f() AS $$\nBEGIN\n  x;\nEND;\n$$;\nSELECT 1")
	require.Len(t, got, 3)
	assert.Equal(t, "CREATE TABLE a (x INT); -- trailing", got[0])
	assert.Equal(t, "CREATE FUNCTION f() AS $$\nBEGIN\n  x;\nEND;\n$$;", got[1])
	assert.Equal(t, "SELECT 1", got[2])
}
