package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lcat and ltee hand their standard streams to reshd; what the user sees
// is what it was when they copied: lcat into `head -1` dies of SIGPIPE
// (status 141) at once, as cat does, and so does ltee.
func TestTransferBrokenPipe(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(randomText(16<<20, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resh(t, dir, "", d.addr, `{ lcat big; echo "lcat $?" >&2; } | head -1 >/dev/null; `+
		`yes | head -c 16000000 | { ltee copy; echo "ltee $?" >&2; } | head -c 10 >/dev/null`)
	if r.code != 0 || !strings.Contains(r.stderr, "lcat 141\n") || !strings.Contains(r.stderr, "ltee 141\n") {
		t.Fatalf("%+v", r)
	}
	if st, err := os.Stat(filepath.Join(dir, "copy.partial")); err != nil || st.Size() >= 16000000 {
		t.Errorf("copy: %v, %v; want what ltee read before it died", st, err)
	}
}

// reshd writes into whatever lcat's stdout is: a file shares its offset
// with the shell, /dev/null, a pipe, a terminal.
func TestTransferStdoutKinds(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("A\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resh(t, dir, "", d.addr, `{ lcat a; echo mid; lcat a; } > f; cat f; lcat a > /dev/null && echo null; `+
		`lcat a | cat; printf "1\n2\n" | ltee y > f2; cat f2; ltee -a y < f2 > /dev/null; lcat y`)
	if want := "A\nmid\nA\nnull\nA\n1\n2\n1\n2\n1\n2\n"; r.code != 0 || r.stdout != want {
		t.Errorf("got %+v, want stdout %q", r, want)
	}
	r = resh(t, dir, "", "-tt", d.addr, "lcat a a; echo x | ltee t")
	if r.code != 0 || r.stdout != "A\r\nA\r\nx\r\n" {
		t.Errorf("on a terminal: %+v", r)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "t")); err != nil || string(b) != "x\n" {
		t.Errorf("t: %q, %v", b, err)
	}
}
