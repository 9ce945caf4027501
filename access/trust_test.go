package access

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hidden files and directories are refused unless an -allow names them, or
// names a directory under which they are not hidden.
func TestHiddenRefused(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".bashrc"), "rc")
	if err := os.MkdirAll(filepath.Join(home, ".config", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(home, ".config", "app", "conf"), "conf")
	write(t, filepath.Join(home, "plain"), "plain")
	if err := os.Symlink(".bashrc", filepath.Join(home, "innocent")); err != nil {
		t.Fatal(err)
	}
	d := newDirs(t, home)
	for path, want := range map[string]string{
		".bashrc":               "refused: hidden file .bashrc (name it with -allow to permit)",
		"./.bashrc":             "refused: hidden file ./.bashrc (name it with -allow to permit)",
		".config/app/conf":      "refused: .config/app/conf is in hidden directory .config (name it with -allow to permit)",
		"x/../.config/app/conf": "refused: x/../.config/app/conf is in hidden directory .config (name it with -allow to permit)",
		"innocent":              "refused: innocent leads to " + filepath.Join(home, ".bashrc") + ", a hidden path (name it with -allow to permit)",
	} {
		_, err := d.Open(path)
		if err == nil || err.Error() != want || !errors.Is(err, ErrHidden) {
			t.Errorf("Open(%q): %v, want %q", path, err, want)
		}
		_, err = d.Create(path, true)
		if !errors.Is(err, ErrHidden) {
			t.Errorf("Create(%q): %v, want refused", path, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".bashrc")); string(b) != "rc" {
		t.Errorf(".bashrc changed: %q", b)
	}
	if _, err := d.Create(".new", false); !errors.Is(err, ErrHidden) {
		t.Errorf("Create(.new): %v", err)
	}
	if _, err := os.Lstat(filepath.Join(home, ".new")); !os.IsNotExist(err) {
		t.Errorf("a refused Create left .new: %v", err)
	}
	if f, err := d.Open("plain"); err != nil {
		t.Errorf("plain: %v", err)
	} else {
		f.Close()
	}

	// Named with -allow: the file itself, or the hidden directory.
	d = newDirs(t, home, ".bashrc", filepath.Join(home, ".config"))
	for _, path := range []string{".bashrc", "innocent", ".config/app/conf", filepath.Join(home, ".config", "app", "conf")} {
		f, err := d.Open(path)
		if err != nil {
			t.Errorf("with -allow, Open(%q): %v", path, err)
			continue
		}
		f.Close()
	}
	// A new hidden file, named before it exists.
	d = newDirs(t, home, ".new")
	f, err := d.Create(".new", false)
	if err != nil {
		t.Fatalf("Create(.new) named by -allow: %v", err)
	}
	f.Close()
}

// resh's key directory and ~/.ssh are refused even under an -allow that
// covers them, unless an -allow names them or a path in them.
func TestProtectedRefused(t *testing.T) {
	home := t.TempDir()
	for _, dir := range []string{".ssh", ".resh"} {
		if err := os.Mkdir(filepath.Join(home, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(home, dir, "id_ed25519"), "KEY")
	}
	prot := []Protected{
		{Dir: filepath.Join(home, ".resh"), Name: "resh's key directory " + filepath.Join(home, ".resh")},
		{Dir: filepath.Join(home, ".ssh"), Name: "~/.ssh"},
	}
	open := func(allow []string, path string) error {
		d, err := New(home, allow, prot...)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		f, err := d.Open(path)
		if err == nil {
			f.Close()
		}
		return err
	}
	err := open([]string{home, filepath.Join(home, ".resh", "..")}, ".ssh/id_ed25519")
	if want := "refused: .ssh/id_ed25519 is in ~/.ssh (name it exactly with -allow to permit)"; err == nil || err.Error() != want {
		t.Errorf("-allow HOME: %v, want %q", err, want)
	}
	if err := open([]string{filepath.Join(home, ".ssh", "id_ed25519")}, filepath.Join(home, ".resh", "id_ed25519")); !errors.Is(err, ErrProtected) {
		t.Errorf(".resh with .ssh's key allowed: %v", err)
	}
	// The working directory is no -allow.
	d, err := New(filepath.Join(home, ".ssh"), nil, prot...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Open("id_ed25519"); !errors.Is(err, ErrProtected) {
		t.Errorf("from inside ~/.ssh: %v", err)
	}
	// Named exactly.
	if err := open([]string{filepath.Join(home, ".ssh")}, ".ssh/id_ed25519"); err != nil {
		t.Errorf("-allow ~/.ssh: %v", err)
	}
	if err := open([]string{filepath.Join(home, ".resh", "id_ed25519")}, ".resh/id_ed25519"); err != nil {
		t.Errorf("-allow the key itself: %v", err)
	}
	// Through a link from an allowed place.
	if err := os.Symlink(filepath.Join(".ssh", "id_ed25519"), filepath.Join(home, "k")); err != nil {
		t.Fatal(err)
	}
	if err := open(nil, "k"); !errors.Is(err, ErrProtected) || !strings.Contains(err.Error(), "k leads to ") {
		t.Errorf("link to a key: %v", err)
	}
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
	go func() {
		defer close(done)
		_, err := d.Open("f")
		if want := "refused: f is a FIFO, not a regular file (name it with -allow to permit)"; err == nil || err.Error() != want {
			t.Errorf("Open(f): %v, want %q", err, want)
		}
		if _, err := d.Create("f", false); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Create(f): %v", err)
		}
		if _, err := d.Open("/dev/zero"); err == nil || !strings.Contains(err.Error(), "is a device") {
			t.Errorf("Open(/dev/zero) under -allow /dev: %v", err)
		}
		if _, err := d.Create("/dev/null", false); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Create(/dev/null) under -allow /dev: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}

	d = newDirs(t, cwd, "f", "/dev/zero")
	f, err := d.Open("f") // no writer: no wait
	if err != nil {
		t.Fatalf("Open(f) allowed: %v", err)
	}
	if b, err := io.ReadAll(f); err != nil || len(b) != 0 {
		t.Errorf("reading a FIFO without writer: %q, %v", b, err)
	}
	f.Close()
	if _, err := d.Create("f", false); err == nil || !strings.Contains(err.Error(), "no such device or address") {
		t.Errorf("Create(f) allowed, no reader: %v, want ENXIO at once", err)
	}
	z, err := d.Open("/dev/zero")
	if err != nil {
		t.Fatalf("Open(/dev/zero) allowed: %v", err)
	}
	defer z.Close()
	if n, err := z.Read(make([]byte, 10)); n != 10 || err != nil {
		t.Errorf("read /dev/zero: %d, %v", n, err)
	}

	// A FIFO read waiting for data ends when the file is closed.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f, err = d.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() { _, err := f.Read(make([]byte, 1)); read <- err }()
	f.Close()
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("read after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing did not end a read of a FIFO")
	}
}

// A regular file comes back blocking.
func TestRegularBlocking(t *testing.T) {
	cwd := t.TempDir()
	write(t, filepath.Join(cwd, "a"), "A")
	f, err := newDirs(t, cwd).Open("a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, _ := f.SyscallConn()
	var fl uintptr
	_ = rc.Control(func(fd uintptr) {
		fl, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	if fl&syscall.O_NONBLOCK != 0 {
		t.Errorf("flags %#x: O_NONBLOCK left on a regular file", fl)
	}
}

// A trailing slash says "directory", as to the system.
func TestTrailingSlash(t *testing.T) {
	cwd := t.TempDir()
	write(t, filepath.Join(cwd, "in.txt"), "x")
	d := newDirs(t, cwd)
	for _, p := range []string{"in.txt/", "in.txt/."} {
		if _, err := d.Open(p); err == nil || err.Error() != p+": not a directory" {
			t.Errorf("Open(%q): %v, want not a directory", p, err)
		}
		if _, err := d.Create(p, false); err == nil || !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("Create(%q): %v, want not a directory", p, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(cwd, "in.txt")); string(b) != "x" {
		t.Errorf("in.txt changed: %q", b)
	}
}

func TestNone(t *testing.T) {
	d := None()
	defer d.Close()
	_, err := d.Open("a")
	if want := "refused: resh serves no files in this session (resh -no-files)"; err == nil || err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
	if _, err := d.Create("b", false); !errors.Is(err, ErrNoFiles) {
		t.Errorf("Create: %v", err)
	}
}

// A cut file is set aside under a free name.
func TestSetAside(t *testing.T) {
	cwd := t.TempDir()
	d := newDirs(t, cwd)
	write(t, filepath.Join(cwd, "out.partial"), "older")
	f, err := d.Create("out", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = f.WriteString("cut")
	name, err := d.SetAside("out", f, ".partial")
	if err != nil || name != "out.partial.1" {
		t.Fatalf("SetAside: %q, %v", name, err)
	}
	if b, _ := os.ReadFile(filepath.Join(cwd, "out.partial.1")); string(b) != "cut" {
		t.Errorf("out.partial.1: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(cwd, "out.partial")); string(b) != "older" {
		t.Errorf("out.partial: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(cwd, "out")); !os.IsNotExist(err) {
		t.Errorf("out still there: %v", err)
	}
	// Not the same file any more: left alone.
	write(t, filepath.Join(cwd, "out"), "new")
	if _, err := d.SetAside("out", f, ".partial"); err == nil {
		t.Errorf("SetAside of a replaced file succeeded")
	}
}
