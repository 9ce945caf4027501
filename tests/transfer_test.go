package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// lcat reads the client's file and ltee writes the client's file in the
// middle of a remote pipeline.
func TestLcatSortLtee(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	data := randomText(2<<20, 7)
	if err := os.WriteFile(filepath.Join(dir, "data.csv"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resh(t, dir, "", d.addr, "lcat data.csv | LC_ALL=C sort | ltee sorted.csv | wc -l")
	if r.code != 0 {
		t.Fatalf("pipeline: %+v", r)
	}
	lines := strings.SplitAfter(data, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	sort.Strings(lines)
	got, err := os.ReadFile(filepath.Join(dir, "sorted.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// sort(1) in the C locale and Go agree on byte order.
	if want := strings.Join(lines, ""); string(got) != want {
		t.Fatalf("sorted.csv: %d bytes, want %d", len(got), len(want))
	}
	if strings.TrimSpace(r.stdout) != fmt.Sprint(len(lines)) {
		t.Fatalf("ltee passed %s lines through, want %d", strings.TrimSpace(r.stdout), len(lines))
	}
}

// Many transfers at once, in one pipeline and in several sessions.
func TestConcurrentTransfers(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	for i, name := range []string{"a", "b", "c", "d"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(randomText(1<<20, uint64(10+i))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for s := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := ""
			for _, name := range []string{"a", "b", "c", "d"} {
				cmd += fmt.Sprintf("lcat %s | ltee copy%d%s >/dev/null & ", name, s, name)
			}
			cmd += "wait"
			r := resh(t, dir, "", d.addr, cmd)
			if r.code != 0 {
				t.Errorf("session %d: %+v", s, r)
			}
		}()
	}
	wg.Wait()
	for s := range 3 {
		for _, name := range []string{"a", "b", "c", "d"} {
			want, _ := os.ReadFile(filepath.Join(dir, name))
			got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("copy%d%s", s, name)))
			if err != nil || string(got) != string(want) {
				t.Errorf("session %d copy of %s: %d bytes, want %d (%v)", s, name, len(got), len(want), err)
			}
		}
	}
}

func TestLteeAppendAndMultipleFiles(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	r := resh(t, dir, "", d.addr, "echo one | ltee x y >/dev/null && echo two | ltee -a x >/dev/null && lcat x y")
	if r.code != 0 || r.stdout != "one\ntwo\none\n" {
		t.Fatalf("%+v", r)
	}
}

// The client is in charge: paths outside its directory are refused with a
// clear message and a non-zero status, and the session goes on.
func TestRefusedPaths(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/etc/passwd", "../" + filepath.Base(outside) + "/secret", "link", filepath.Join(outside, "secret")} {
		r := resh(t, dir, "", d.addr, "lcat '"+path+"'; echo status $?")
		if !strings.Contains(r.stdout, "status 1") || strings.Contains(r.stdout, "secret") || !strings.Contains(r.stderr, "lcat: ") {
			t.Errorf("lcat %s: %+v", path, r)
		}
	}
	r := resh(t, dir, "", d.addr, "echo x | ltee /tmp/should-not-exist-"+filepath.Base(dir)+"; echo status $?")
	if !strings.Contains(r.stdout, "status 1") || !strings.Contains(r.stderr, "ltee: ") {
		t.Errorf("ltee outside: %+v", r)
	}
	r = resh(t, dir, "", d.addr, "lcat missing-file; echo status $?")
	if !strings.Contains(r.stdout, "status 1") || !strings.Contains(r.stderr, "missing-file") {
		t.Errorf("missing file: %+v", r)
	}
	// -allow opens another directory.
	r = resh(t, dir, "", "-allow", outside, d.addr, "lcat "+filepath.Join(outside, "secret"))
	if r.code != 0 || r.stdout != "secret\n" {
		t.Errorf("with -allow: %+v", r)
	}
}

func TestLcatOutsideSession(t *testing.T) {
	r := local(t, t.TempDir(), "", "env -u RESH_SOCKET "+filepath.Join(bin, "lcat")+" x")
	if r.code == 0 || !strings.Contains(r.stderr, "resh session") {
		t.Fatalf("lcat outside a session: %+v", r)
	}
}

// An ltee that dies before its input ended leaves a file holding only what
// arrived, set aside as out.partial; resh says so on its stderr, since
// nobody else can.
func TestLteeIncompleteFileReported(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	r := resh(t, dir, "", d.addr, "yes | ltee out | head -c 100000 >/dev/null")
	got, err := os.ReadFile(filepath.Join(dir, "out.partial"))
	if err != nil || len(got) < 100000 {
		t.Fatalf("out.partial: %d bytes, %v", len(got), err)
	}
	want := fmt.Sprintf("resh: ltee: out was cut after %d bytes (ltee was killed by SIGPIPE): kept as out.partial\n", len(got))
	if r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
}
