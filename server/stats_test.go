package server

import (
	"testing"
	"time"

	"resh/proto"
)

// waitSessions waits until srv serves n sessions, on the event that
// changes it, within the test timeout.
func waitSessions(t *testing.T, srv *Server, n int) Stats {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		srv.mu.Lock()
		ch := srv.changed
		srv.mu.Unlock()
		st := srv.Stats()
		if st.Sessions == n {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("sessions: %d, want %d", st.Sessions, n)
		}
	}
}

func TestStatsCountSessions(t *testing.T) {
	srv := startServer(t, nil)
	if st := srv.Stats(); st.Sessions != 0 || st.Links != 0 || st.Connection.Sessions != 0 {
		t.Fatalf("idle server: %+v", st)
	}
	c := dial(t, srv, proto.Hello{Command: "cat"}, nil)
	c.started()
	st := srv.Stats()
	if st.Sessions != 1 || st.Links != 0 {
		t.Fatalf("one session: %+v", st)
	}
	if st.Connection.Sessions != 1 || st.Connection.Total.FramesReceived == 0 {
		t.Fatalf("the listener's account: %+v", st.Connection)
	}
	if err := c.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	readAll(t, c.stdout)
	c.exit()
	c.close()
	st = waitSessions(t, srv, 0)
	if st.Connection.Total.FramesReceived == 0 {
		t.Fatalf("the ended session's frames are lost: %+v", st.Connection)
	}
}

// A Server made by New has no listener: its connection account is zero.
func TestStatsWithoutListener(t *testing.T) {
	srv, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	if st := srv.Stats(); st != (Stats{}) {
		t.Fatalf("Stats of an idle Server made by New: %+v", st)
	}
}
