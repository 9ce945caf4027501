package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"resh/auth"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"-x", "host"}, {"-p"}, {"-t", "-T", "host"}, {"-p", "70000", "host"}} {
		var stdout, stderr bytes.Buffer
		code := run(args, strings.NewReader(""), &stdout, &stderr)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "resh: ") || !strings.HasPrefix(lines[1], "usage: resh ") || stdout.Len() != 0 {
			t.Errorf("resh %q: exit %d stderr %q; want 2, an error line and the usage line", args, code, stderr.String())
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, strings.NewReader(""), &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "usage: resh ") {
		t.Fatalf("resh -h: exit %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestConnectFailure(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RESH_HOME", home)
	if _, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.IdentityFile)); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-p", "1", "127.0.0.1", "true"}, strings.NewReader(""), &stdout, &stderr)
	if code != 255 || !strings.HasPrefix(stderr.String(), "resh: cannot connect to 127.0.0.1:1: ") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %d stderr %q; want 255 and one line", code, stderr.String())
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
