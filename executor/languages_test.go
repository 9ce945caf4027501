package executor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/lang"
)

// TestLanguages: the languages advertised are those of the set whose
// tools are here, a languages file's included.
func TestLanguages(t *testing.T) {
	assert.Contains(t, Languages(nil), "sh", "this machine has sh")
	f := filepath.Join(t.TempDir(), lang.FileName)
	require.NoError(t, os.WriteFile(f, []byte("[shell2]\nextensions = .sh2\nrun = sh {source}\n\n[ghost]\nextensions = .gh\nrun = no-such-program-here {source}\n"), 0o600))
	set, err := lang.Load(f, nil)
	require.NoError(t, err)
	got := Languages(set)
	assert.Contains(t, got, "shell2")
	assert.NotContains(t, got, "ghost", "its tool is not here")
}
