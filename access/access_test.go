package access

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newDirs(t *testing.T, cwd string, allow ...string) *Dirs {
	t.Helper()
	d, err := New(cwd, allow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenInsideCwd(t *testing.T) {
	cwd := t.TempDir()
	if err := os.Mkdir(filepath.Join(cwd, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(cwd, "sub", "a.txt"), "hello")
	d := newDirs(t, cwd)
	for _, p := range []string{"sub/a.txt", "./sub/../sub/a.txt", filepath.Join(cwd, "sub", "a.txt")} {
		f, err := d.Open(p)
		if err != nil {
			t.Fatalf("Open(%q): %v", p, err)
		}
		if got := readAll(t, f); got != "hello" {
			t.Fatalf("Open(%q) read %q", p, got)
		}
	}
}

func wantOutside(t *testing.T, err error, path string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want permission denied", path)
	}
	want := "permission denied: " + path + " is outside the directories resh allows (add one with -allow)"
	if err.Error() != want || !errors.Is(err, ErrOutside) {
		t.Fatalf("%s: error %q, want %q", path, err, want)
	}
}

func TestRefusedOutside(t *testing.T) {
	parent := t.TempDir()
	cwd := filepath.Join(parent, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(parent, "secret")
	write(t, secret, "secret")
	if err := os.Symlink(secret, filepath.Join(cwd, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(parent, filepath.Join(cwd, "dirlink")); err != nil {
		t.Fatal(err)
	}
	d := newDirs(t, cwd)
	for _, p := range []string{"../secret", secret, "/etc/passwd", "link", "dirlink/secret"} {
		_, err := d.Open(p)
		wantOutside(t, err, p)
		_, err = d.Create(p, false)
		wantOutside(t, err, p)
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Fatalf("secret file changed: %q", b)
	}
}

func TestAllowOtherDir(t *testing.T) {
	cwd, other := t.TempDir(), t.TempDir()
	write(t, filepath.Join(other, "data"), "other")
	if _, err := newDirs(t, cwd).Open(filepath.Join(other, "data")); !errors.Is(err, ErrOutside) {
		t.Fatalf("without -allow: %v, want outside", err)
	}
	d := newDirs(t, cwd, other)
	f, err := d.Open(filepath.Join(other, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "other" {
		t.Fatalf("read %q", got)
	}
	w, err := d.Create(filepath.Join(other, "new"), false)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}

func TestMissingFile(t *testing.T) {
	d := newDirs(t, t.TempDir())
	_, err := d.Open("nope.txt")
	if err == nil || err.Error() != "no such file: nope.txt" || !errors.Is(err, ErrNotExist) {
		t.Fatalf("error %v, want no such file: nope.txt", err)
	}
	_, err = d.Create("nodir/x", false)
	if err == nil || err.Error() != "no such file: nodir/x" {
		t.Fatalf("Create in missing dir: %v", err)
	}
}

func TestCreateTruncateAppend(t *testing.T) {
	cwd := t.TempDir()
	d := newDirs(t, cwd)
	for _, step := range []struct {
		appendMode bool
		data, want string
	}{{false, "first\n", "first\n"}, {true, "second\n", "first\nsecond\n"}, {false, "x", "x"}} {
		f, err := d.Create("out.txt", step.appendMode)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(step.data); err != nil {
			t.Fatal(err)
		}
		f.Close()
		b, err := os.ReadFile(filepath.Join(cwd, "out.txt"))
		if err != nil || string(b) != step.want {
			t.Fatalf("after append=%v %q: %q, %v; want %q", step.appendMode, step.data, b, err, step.want)
		}
	}
	st, err := os.Stat(filepath.Join(cwd, "out.txt"))
	if err != nil || st.Mode().Perm()&^0o022 != 0o644 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
}

func TestNewMissingDir(t *testing.T) {
	_, err := New(t.TempDir(), []string{"/no/such/dir"})
	if err == nil || !strings.HasPrefix(err.Error(), "access:") {
		t.Fatalf("New with missing -allow dir: %v", err)
	}
}
