package client

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"resh/connection"
)

// On a terminal, the first refused redial of an outage is announced once.
func TestRefusalNotice(t *testing.T) {
	var buf bytes.Buffer
	r := &runner{o: &Options{}, stderr: &syncWriter{w: &buf}}
	notice := r.refusalNotice("h:1")
	refused := fmt.Errorf("connection: dial h:1: %w", syscall.ECONNREFUSED)
	notice(connection.StateEvent{Err: errors.New("transport lost")})
	notice(connection.StateEvent{Attempt: 1, Err: errors.New("i/o timeout")})
	for i := 2; i < 5; i++ {
		notice(connection.StateEvent{Attempt: i, Err: refused})
	}
	want := "resh: reshd at h:1 refused the connection; retrying for 30s...\n"
	if buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
	notice(connection.StateEvent{Connected: true, Attempt: 5})
	notice(connection.StateEvent{Attempt: 1, Err: refused})
	if buf.String() != want+want {
		t.Errorf("next outage: got %q", buf.String())
	}
}
