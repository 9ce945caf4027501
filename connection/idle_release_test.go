package connection

import (
	"io"
	"testing"
	"time"
)

// An idle session gives back its rings even on the side that only answers
// heartbeats: here the client pings more often than the server would, so
// the server's own heartbeat never comes due.
func TestIdleServerReleasesRings(t *testing.T) {
	cfg := fastConfig()
	ccfg := fastConfig()
	ccfg.HeartbeatInterval = cfg.HeartbeatInterval / 3
	_, cl, acc := pairWith(t, cfg, ccfg)
	data := randomBytesN(1<<20, 7)
	go func() { _, _ = acc.Write(data) }()
	if _, err := io.ReadFull(cl, make([]byte, len(data))); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = cl.Write(data) }()
	if _, err := io.ReadFull(acc, make([]byte, len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write([]byte("last word")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(acc, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * cfg.HeartbeatInterval)
	for {
		acc.mu.Lock()
		sring, rring := len(acc.sring), len(acc.rring)
		acc.mu.Unlock()
		if sring == 0 && rring == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle server still holds its rings: send %d, receive %d bytes", sring, rring)
		}
		time.Sleep(cfg.HeartbeatInterval)
	}
}
