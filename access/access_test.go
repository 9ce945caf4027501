package access

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return string(b)
}

func newDirs(t *testing.T, cwd string, allow ...string) *Dirs {
	t.Helper()
	d, err := New(cwd, allow)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenInsideCwd(t *testing.T) {
	cwd := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(cwd, "sub"), 0o755))
	write(t, filepath.Join(cwd, "sub", "a.txt"), "hello")
	d := newDirs(t, cwd)
	for _, p := range []string{"sub/a.txt", "./sub/../sub/a.txt", filepath.Join(cwd, "sub", "a.txt")} {
		f, err := d.Open(p)
		require.NoError(t, err, p)
		assert.Equal(t, "hello", readAll(t, f), p)
	}
}

func wantOutside(t *testing.T, err error, path string) {
	t.Helper()
	require.ErrorIs(t, err, ErrOutside, path)
	assert.EqualError(t, err, "permission denied: "+path+" is outside the directories resh allows (add one with -allow)")
}

func TestRefusedOutside(t *testing.T) {
	parent := t.TempDir()
	cwd := filepath.Join(parent, "cwd")
	require.NoError(t, os.Mkdir(cwd, 0o755))
	secret := filepath.Join(parent, "secret")
	write(t, secret, "secret")
	require.NoError(t, os.Symlink(secret, filepath.Join(cwd, "link")))
	require.NoError(t, os.Symlink(parent, filepath.Join(cwd, "dirlink")))
	d := newDirs(t, cwd)
	for _, p := range []string{"../secret", secret, "/etc/passwd", "link", "dirlink/secret"} {
		_, err := d.Open(p)
		wantOutside(t, err, p)
		_, err = d.Create(p, false)
		wantOutside(t, err, p)
	}
	b, _ := os.ReadFile(secret)
	assert.Equal(t, "secret", string(b), "the secret file is unchanged")
}

func TestAllowOtherDir(t *testing.T) {
	cwd, other := t.TempDir(), t.TempDir()
	write(t, filepath.Join(other, "data"), "other")
	_, err := newDirs(t, cwd).Open(filepath.Join(other, "data"))
	require.ErrorIs(t, err, ErrOutside, "without -allow")
	d := newDirs(t, cwd, other)
	f, err := d.Open(filepath.Join(other, "data"))
	require.NoError(t, err)
	assert.Equal(t, "other", readAll(t, f))
	w, err := d.Create(filepath.Join(other, "new"), false)
	require.NoError(t, err)
	w.Close()
}

func TestMissingFile(t *testing.T) {
	d := newDirs(t, t.TempDir())
	_, err := d.Open("nope.txt")
	require.ErrorIs(t, err, ErrNotExist)
	assert.EqualError(t, err, "no such file: nope.txt")
	_, err = d.Create("nodir/x", false)
	assert.EqualError(t, err, "no such file: nodir/x", "Create in a missing directory")
}

func TestCreateTruncateAppend(t *testing.T) {
	cwd := t.TempDir()
	d := newDirs(t, cwd)
	for _, step := range []struct {
		appendMode bool
		data, want string
	}{{false, "first\n", "first\n"}, {true, "second\n", "first\nsecond\n"}, {false, "x", "x"}} {
		f, err := d.Create("out.txt", step.appendMode)
		require.NoError(t, err)
		_, err = f.WriteString(step.data)
		require.NoError(t, err)
		f.Close()
		b, err := os.ReadFile(filepath.Join(cwd, "out.txt"))
		require.NoError(t, err)
		assert.Equal(t, step.want, string(b), "after append=%v %q", step.appendMode, step.data)
	}
	st, err := os.Stat(filepath.Join(cwd, "out.txt"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm()&^0o022)
}

func TestNewMissingDir(t *testing.T) {
	_, err := New(t.TempDir(), []string{"/no/such/dir"})
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.EqualError(t, err, "-allow /no/such/dir: no such directory /no/such")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = New(t.TempDir(), []string{file + "/x"})
	assert.EqualError(t, err, "-allow "+file+"/x: "+file+": not a directory")
}
