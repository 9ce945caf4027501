package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemoSmall(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-size", "512KiB", "-drop-after", "200KiB"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "received intact") {
		t.Fatalf("output: %s", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-size", "lots"}, {"-corrupt", "2"}, {"extra"}, {"-nope"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.HasPrefix(errb.String(), "conndemo: ") {
			t.Errorf("%v: stderr %q", args, errb.String())
		}
	}
}
