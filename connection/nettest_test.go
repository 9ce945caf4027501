package connection

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// Client and Accepted pass the standard net.Conn conformance suite.
func TestNetConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		cfg := fastConfig()
		cfg.DrainTimeout = 2 * time.Second
		srv, err := Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl, err := Dial(ctx, "tcp", srv.Addr().String(), cfg)
		if err != nil {
			srv.Close()
			return nil, nil, nil, err
		}
		acc, err := srv.Accept()
		if err != nil {
			cl.abort()
			srv.Close()
			return nil, nil, nil, err
		}
		stop = func() {
			cl.abort()
			acc.abort()
			srv.Close()
		}
		return cl, acc, stop, nil
	})
}
