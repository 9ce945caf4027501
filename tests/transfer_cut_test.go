package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var stoppedRE = regexp.MustCompile(`resh: lcat: (\S+): stopped after (\d+) bytes: the reader went away`)

// A reader of lcat that goes away stops lcat (141, as cat) and the client's
// reading at once: /dev/zero stops, and of a 64 MiB file a few hundred KiB
// are read (resh -v says how many; issue 9 measured all of it).
func TestLcatReaderGoneStopsClient(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	const size = 64 << 20
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("0123456789abcde\n", size/16)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resh(t, dir, "", append([]string{"-v", "-allow", "/dev/zero"}, d.args(d.addr,
		`{ lcat /dev/zero; echo "lcat $?" >&2; } | head -c 1000000 | wc -c; `+
			`{ lcat big; echo "lcat $?" >&2; } | head -c 1000 | wc -c`)...)...)
	if r.code != 0 || strings.Fields(r.stdout)[0] != "1000000" || strings.Fields(r.stdout)[1] != "1000" ||
		strings.Count(r.stderr, "lcat 141\n") != 2 {
		t.Fatalf("%+v", r)
	}
	sent := map[string]int64{}
	for _, m := range stoppedRE.FindAllStringSubmatch(r.stderr, -1) {
		sent[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	for _, name := range []string{"/dev/zero", "big"} {
		n, ok := sent[name]
		if !ok || n > 16<<20 {
			t.Errorf("%s: client sent %d bytes (reported %v); want it stopped within a few windows:\n%s", name, n, ok, r.stderr)
		}
		t.Logf("%s: the client read %d bytes before it stopped", name, n)
	}
}

// An ltee killed with SIGKILL in the middle of its input: the file is
// set aside as out.partial with what came, and resh says so; an append
// stays where it is, and resh says from where it is incomplete.
func TestLteeKilledMidStream(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "log"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	// ltee writes its pid, then becomes ltee; the reader of its output kills
	// it after 5 MB of 50.
	kill := func(args string) string {
		return `p=$(mktemp); head -c 50000000 /dev/zero | sh -c 'echo $$ > "$0"; exec ltee ` + args + `' "$p" | ` +
			`{ head -c 5000000 >/dev/null; kill -9 $(cat "$p"); cat >/dev/null; }; rm -f "$p"`
	}
	r := resh(t, dir, "", d.args(d.addr, kill("out")+"; "+kill("-a log"))...)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	st, err := os.Stat(filepath.Join(dir, "out.partial"))
	if err != nil || st.Size() < 5000000 || st.Size() >= 50000000 {
		t.Fatalf("out.partial: %v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("out is there, looking complete: %v", err)
	}
	want := fmt.Sprintf("resh: ltee: out was cut after %d bytes (ltee ended before its input did): kept as out.partial\n", st.Size())
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	lst, err := os.Stat(filepath.Join(dir, "log"))
	if err != nil || lst.Size() < 5000010 || lst.Size() >= 50000010 {
		t.Fatalf("log: %v, %v", lst, err)
	}
	want = fmt.Sprintf("resh: ltee: log was cut after %d bytes (ltee ended before its input did): the append at offset 10 is incomplete from offset %d\n", lst.Size()-10, lst.Size())
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}
