// Package streamtest gives tests both ends of a real yamux stream, as a
// transfer has them, without sockets.
package streamtest

import (
	"net"
	"sync"
	"testing"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// Pair returns both ends of one yamux stream over net.Pipe, configured as
// resh configures its sessions: the client's end (which serves a transfer)
// and the tool's (which asked for it). Both sessions close with the test.
func Pair(t testing.TB) (client, tool *yamux.Stream) {
	t.Helper()
	a, b := net.Pipe()
	cs, err := proto.Client(a)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := proto.Server(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	tool, err = ss.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// The SYN travels with the first bytes.
	if _, err := tool.Write(nil); err != nil {
		t.Fatal(err)
	}
	client, err = cs.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	return client, tool
}

// ServeUnix listens on a Unix socket at path and runs serve on each
// connection in its own goroutine (closing the connection after), until the
// test ends; the cleanup waits for every handler.
func ServeUnix(t testing.TB, path string, serve func(net.Conn)) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
}
