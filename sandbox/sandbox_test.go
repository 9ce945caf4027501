package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// run runs a shell script in a sandbox with a fresh work directory.
func run(t *testing.T, lim Limits, stdin string, argv ...string) (Result, string, string) {
	t.Helper()
	require.NoError(t, Available())
	var out, errb bytes.Buffer
	s := Spec{Dir: workDir(t), Argv: argv, Stdout: &out, Stderr: &errb, Limits: lim}
	if stdin != "" {
		s.Stdin = strings.NewReader(stdin)
	}
	res, err := Run(context.Background(), s)
	require.NoError(t, err)
	return res, out.String(), errb.String()
}

func TestHello(t *testing.T) {
	res, out, errs := run(t, Limits{}, "world\n", "sh", "-c", `read x; echo "hello $x"; echo oops >&2; exit 3`)
	assert.Equal(t, Exited, res.Outcome, res.Detail)
	assert.Equal(t, 3, res.Code)
	assert.Equal(t, "hello world\n", out)
	assert.Equal(t, "oops\n", errs)
	assert.EqualValues(t, len(out), res.Stdout)
	assert.EqualValues(t, len(errs), res.Stderr)
	t.Logf("%+v", res)
}

// workDir makes a work directory that nobody can reach (t.TempDir's
// parents are private to root).
func workDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "sandbox-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o711))
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "work")
	require.NoError(t, os.Mkdir(dir, 0o755))
	return dir
}
