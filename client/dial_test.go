package client

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server that accepts and never answers is named as such, within the
// connect timeout; a port where nothing answers at all is not.
func TestDialSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	var stderr bytes.Buffer
	start := time.Now()
	code := Run(context.Background(), &Options{Host: "127.0.0.1", Port: port, Insecure: true, ConnectTimeout: time.Second, Verbosity: 1},
		Env{Stdin: bytes.NewReader(nil), Stdout: &bytes.Buffer{}, Stderr: &stderr, Environ: []string{}})
	assert.Equal(t, ExitFailure, code)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	assert.Contains(t, stderr.String(), "resh: connecting to "+addr+" (tcp)\n")
	assert.Contains(t, stderr.String(), "resh: TCP connected to "+addr+" in ")
	assert.Contains(t, stderr.String(), "resh: "+addr+" accepted the connection but never answered: is it a reshd?\n")
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestIsTimeout(t *testing.T) {
	assert.True(t, isTimeout(context.DeadlineExceeded))
	assert.False(t, isTimeout(context.Canceled))
	assert.False(t, isTimeout(net.ErrClosed))
}
