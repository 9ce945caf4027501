package connection

import (
	"testing"
	"time"
)

// A session whose transport was cut, then closed, stays in the Server's
// totals once it ended and the Server forgot it.
func TestServerStatsKeepEndedSessions(t *testing.T) {
	d := &faultyDialer{plan: func(n int) faults {
		f := clean()
		if n == 0 {
			f.failWrites = 8 // the first transport breaks mid-transfer
		}
		return f
	}}
	cfg := fastConfig()
	cfg.MaxFrameSize = 4 << 10 // many writes per transfer
	srv, cl, acc := pairWith(t, cfg, withDialer(cfg, d))
	if st := srv.Stats(); st.Sessions != 1 {
		t.Fatalf("live sessions: %d, want 1", st.Sessions)
	}
	bothWays(t, cl, acc, randomBytesN(256<<10, 40), randomBytesN(256<<10, 41))
	if d.dials() < 2 {
		t.Fatalf("the transport was never cut (%d dials)", d.dials())
	}
	live := srv.Stats()
	if live.Total.Resumes < 1 || live.Total.FramesReceived == 0 {
		t.Fatalf("live totals %+v: want a resume and frames received", live.Total)
	}

	errc := make(chan error, 1)
	go func() { errc <- cl.Close() }()
	if err := acc.Close(); err != nil {
		t.Fatalf("server close: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("client close: %v", err)
	}
	acc.wg.Wait() // its onFinish, hence Server.forget, has run

	st := srv.Stats()
	if st.Sessions != 0 {
		t.Fatalf("live sessions after the close: %d, want 0", st.Sessions)
	}
	if st.Total.Resumes < 1 {
		t.Fatalf("ended session's resumes lost: %+v", st.Total)
	}
	if st.Total.FramesReceived < live.Total.FramesReceived || st.Total.FramesSent < live.Total.FramesSent {
		t.Fatalf("totals went back: %+v, then %+v", live.Total, st.Total)
	}
	if st.Total.FrameSize != 0 {
		t.Fatalf("FrameSize summed: %d", st.Total.FrameSize)
	}
}

// Stats is safe beside sessions that come, move bytes and go.
func TestServerStatsConcurrent(t *testing.T) {
	cfg := fastConfig()
	srv, cl, acc := pair(t, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bothWays(t, cl, acc, randomBytesN(64<<10, 42), randomBytesN(64<<10, 43))
		acc.abort()
	}()
	deadline := time.After(30 * time.Second)
	for {
		_ = srv.Stats()
		select {
		case <-done:
			if st := srv.Stats(); st.Sessions != 0 || st.Total.BytesReceived < 64<<10 {
				t.Fatalf("after the end: %+v", st)
			}
			return
		case <-deadline:
			t.Fatal("transfer did not end")
		default:
		}
	}
}
