package main

import (
	"context"
	"strings"
	"testing"
)

func TestBadFlags(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"-z"}, "/nonexistent", strings.NewReader(""), &out, &errb); code != 2 {
		t.Errorf("lcat -z: exit %d, want 2", code)
	}
	if want := "lcat: flag provided but not defined: -z\n" + usage + "\n"; errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
}

func TestOutsideSession(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"f"}, "", strings.NewReader(""), &out, &errb); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "lcat: not inside a resh session (RESH_SOCKET is not set)\n"; errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
}
