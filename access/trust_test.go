package access

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hidden files and directories are refused unless an -allow names them, or
// names a directory under which they are not hidden.
func TestHiddenRefused(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".bashrc"), "rc")
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".config", "app"), 0o755))
	write(t, filepath.Join(home, ".config", "app", "conf"), "conf")
	write(t, filepath.Join(home, "plain"), "plain")
	require.NoError(t, os.Symlink(".bashrc", filepath.Join(home, "innocent")))
	d := newDirs(t, home)
	for path, want := range map[string]string{
		".bashrc":               "refused: hidden file .bashrc (name it with -allow to permit)",
		"./.bashrc":             "refused: hidden file ./.bashrc (name it with -allow to permit)",
		".config/app/conf":      "refused: .config/app/conf is in hidden directory .config (name it with -allow to permit)",
		"x/../.config/app/conf": "refused: x/../.config/app/conf is in hidden directory .config (name it with -allow to permit)",
		"innocent":              "refused: innocent leads to " + filepath.Join(home, ".bashrc") + ", a hidden path (name it with -allow to permit)",
	} {
		_, err := d.Open(path)
		assert.ErrorIs(t, err, ErrHidden, "Open(%q)", path)
		assert.EqualError(t, err, want, "Open(%q)", path)
		_, err = d.Create(path, true)
		assert.ErrorIs(t, err, ErrHidden, "Create(%q)", path)
	}
	b, _ := os.ReadFile(filepath.Join(home, ".bashrc"))
	assert.Equal(t, "rc", string(b), ".bashrc unchanged")
	_, err := d.Create(".new", false)
	assert.ErrorIs(t, err, ErrHidden, "Create(.new)")
	assert.NoFileExists(t, filepath.Join(home, ".new"), "a refused Create left .new")
	f, err := d.Open("plain")
	require.NoError(t, err)
	f.Close()

	// Named with -allow: the file itself, or the hidden directory.
	d = newDirs(t, home, ".bashrc", filepath.Join(home, ".config"))
	for _, path := range []string{".bashrc", "innocent", ".config/app/conf", filepath.Join(home, ".config", "app", "conf")} {
		f, err := d.Open(path)
		if assert.NoError(t, err, "with -allow, Open(%q)", path) {
			f.Close()
		}
	}
	// A new hidden file, named before it exists.
	d = newDirs(t, home, ".new")
	f, err = d.Create(".new", false)
	require.NoError(t, err, "Create(.new) named by -allow")
	f.Close()
}

// resh's key directory and ~/.ssh are refused even under an -allow that
// covers them, unless an -allow names them or a path in them.
func TestProtectedRefused(t *testing.T) {
	home := t.TempDir()
	for _, dir := range []string{".ssh", ".resh"} {
		require.NoError(t, os.Mkdir(filepath.Join(home, dir), 0o700))
		write(t, filepath.Join(home, dir, "id_ed25519"), "KEY")
	}
	prot := []Protected{
		{Dir: filepath.Join(home, ".resh"), Name: "resh's key directory " + filepath.Join(home, ".resh")},
		{Dir: filepath.Join(home, ".ssh"), Name: "~/.ssh"},
	}
	open := func(allow []string, path string) error {
		d, err := New(home, allow, prot...)
		require.NoError(t, err)
		defer d.Close()
		f, err := d.Open(path)
		if err == nil {
			f.Close()
		}
		return err
	}
	err := open([]string{home, filepath.Join(home, ".resh", "..")}, ".ssh/id_ed25519")
	assert.EqualError(t, err, "refused: .ssh/id_ed25519 is in ~/.ssh (name it exactly with -allow to permit)", "-allow HOME")
	err = open([]string{filepath.Join(home, ".ssh", "id_ed25519")}, filepath.Join(home, ".resh", "id_ed25519"))
	assert.ErrorIs(t, err, ErrProtected, ".resh with .ssh's key allowed")
	// The working directory is no -allow.
	d, err := New(filepath.Join(home, ".ssh"), nil, prot...)
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Open("id_ed25519")
	assert.ErrorIs(t, err, ErrProtected, "from inside ~/.ssh")
	// Named exactly.
	assert.NoError(t, open([]string{filepath.Join(home, ".ssh")}, ".ssh/id_ed25519"), "-allow ~/.ssh")
	assert.NoError(t, open([]string{filepath.Join(home, ".resh", "id_ed25519")}, ".resh/id_ed25519"), "-allow the key itself")
	// Through a link from an allowed place.
	require.NoError(t, os.Symlink(filepath.Join(".ssh", "id_ed25519"), filepath.Join(home, "k")))
	err = open(nil, "k")
	require.ErrorIs(t, err, ErrProtected, "link to a key")
	assert.Contains(t, err.Error(), "k leads to ")
}

// FIFOs, devices and sockets: refused at once, never opened, unless an
// -allow names that path; then opened without blocking.
func TestSpecialFiles(t *testing.T) {
	cwd := t.TempDir()
	fifo := filepath.Join(cwd, "f")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	d := newDirs(t, cwd, "/dev")
	done := make(chan struct{})
	go func() { // assert only: this is not the test's goroutine
		defer close(done)
		_, err := d.Open("f")
		assert.EqualError(t, err, "refused: f is a FIFO, not a regular file (name it with -allow to permit)")
		_, err = d.Create("f", false)
		assert.ErrorIs(t, err, ErrNotRegular, "Create(f)")
		_, err = d.Open("/dev/zero")
		if assert.Error(t, err, "Open(/dev/zero) under -allow /dev") {
			assert.Contains(t, err.Error(), "is a device")
		}
		_, err = d.Create("/dev/null", false)
		assert.ErrorIs(t, err, ErrNotRegular, "Create(/dev/null) under -allow /dev")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}

	d = newDirs(t, cwd, "f", "/dev/zero")
	f, err := d.Open("f") // no writer: no wait
	require.NoError(t, err, "Open(f) allowed")
	b, err := io.ReadAll(f)
	assert.NoError(t, err)
	assert.Empty(t, b, "reading a FIFO without writer")
	f.Close()
	_, err = d.Create("f", false)
	require.Error(t, err, "Create(f) allowed, no reader: ENXIO at once")
	assert.Contains(t, err.Error(), "no such device or address")
	z, err := d.Open("/dev/zero")
	require.NoError(t, err, "Open(/dev/zero) allowed")
	defer z.Close()
	n, err := z.Read(make([]byte, 10))
	assert.NoError(t, err)
	assert.Equal(t, 10, n)

	// A FIFO read waiting for data ends when the file is closed.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	require.NoError(t, err)
	defer w.Close()
	f, err = d.Open("f")
	require.NoError(t, err)
	read := make(chan error, 1)
	go func() { _, err := f.Read(make([]byte, 1)); read <- err }()
	f.Close()
	select {
	case err := <-read:
		assert.ErrorIs(t, err, os.ErrClosed, "read after close")
	case <-time.After(10 * time.Second):
		t.Fatal("closing did not end a read of a FIFO")
	}
}

// A regular file comes back blocking.
func TestRegularBlocking(t *testing.T) {
	cwd := t.TempDir()
	write(t, filepath.Join(cwd, "a"), "A")
	f, err := newDirs(t, cwd).Open("a")
	require.NoError(t, err)
	defer f.Close()
	rc, _ := f.SyscallConn()
	var fl uintptr
	_ = rc.Control(func(fd uintptr) {
		fl, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	assert.Zero(t, fl&syscall.O_NONBLOCK, "flags %#x: O_NONBLOCK left on a regular file", fl)
}

// A trailing slash says "directory", as to the system.
func TestTrailingSlash(t *testing.T) {
	cwd := t.TempDir()
	write(t, filepath.Join(cwd, "in.txt"), "x")
	d := newDirs(t, cwd)
	for _, p := range []string{"in.txt/", "in.txt/."} {
		_, err := d.Open(p)
		assert.EqualError(t, err, p+": not a directory", "Open(%q)", p)
		_, err = d.Create(p, false)
		assert.ErrorIs(t, err, syscall.ENOTDIR, "Create(%q)", p)
	}
	b, _ := os.ReadFile(filepath.Join(cwd, "in.txt"))
	assert.Equal(t, "x", string(b), "in.txt unchanged")
}

func TestNone(t *testing.T) {
	d := None()
	defer d.Close()
	_, err := d.Open("a")
	assert.EqualError(t, err, "refused: resh serves no files in this session (resh -no-files)")
	_, err = d.Create("b", false)
	assert.ErrorIs(t, err, ErrNoFiles)
}

// A cut file is set aside under a free name.
func TestSetAside(t *testing.T) {
	cwd := t.TempDir()
	d := newDirs(t, cwd)
	write(t, filepath.Join(cwd, "out.partial"), "older")
	f, err := d.Create("out", false)
	require.NoError(t, err)
	defer f.Close()
	_, _ = f.WriteString("cut")
	name, err := d.SetAside("out", f, ".partial")
	require.NoError(t, err)
	assert.Equal(t, "out.partial.1", name)
	b, _ := os.ReadFile(filepath.Join(cwd, "out.partial.1"))
	assert.Equal(t, "cut", string(b))
	b, _ = os.ReadFile(filepath.Join(cwd, "out.partial"))
	assert.Equal(t, "older", string(b))
	assert.NoFileExists(t, filepath.Join(cwd, "out"))
	// Not the same file any more: left alone.
	write(t, filepath.Join(cwd, "out"), "new")
	_, err = d.SetAside("out", f, ".partial")
	assert.EqualError(t, err, "cannot set out aside: it was replaced meanwhile")
}
