package client

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
)

// lockedBuffer is a control stream for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) messages(t *testing.T) []proto.Type {
	l.mu.Lock()
	defer l.mu.Unlock()
	var types []proto.Type
	r := bytes.NewReader(l.b.Bytes())
	for r.Len() > 0 {
		typ, _, err := proto.ReadMessage(r)
		require.NoError(t, err)
		types = append(types, typ)
	}
	return types
}

func TestForwardSignals(t *testing.T) {
	ctl := &lockedBuffer{}
	r := &runner{o: &Options{}, control: ctl, stderr: &syncWriter{w: &bytes.Buffer{}}}
	r.connected.Store(true)
	sigs := make(chan os.Signal)
	stop := make(chan struct{})
	interrupted := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		r.forwardSignals(sigs, stop, false, -1, false, interrupted)
		close(done)
	}()
	sigs <- syscall.SIGINT
	sigs <- syscall.SIGWINCH // no tty: nothing to send
	sigs <- syscall.SIGPIPE  // not forwarded
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGWINCH // received once SIGTERM was dealt with
	r.connected.Store(false)
	sigs <- syscall.SIGHUP // lost connection: resh ends instead
	assert.Equal(t, os.Signal(syscall.SIGHUP), <-interrupted)
	close(stop)
	<-done
	assert.Equal(t, []proto.Type{proto.TypeSignal, proto.TypeSignal}, ctl.messages(t))
}

func TestSignalName(t *testing.T) {
	for s, want := range map[os.Signal]string{syscall.SIGINT: "INT", syscall.SIGTERM: "TERM", syscall.SIGHUP: "HUP", syscall.SIGQUIT: "QUIT", syscall.SIGWINCH: ""} {
		assert.Equal(t, want, signalName(s), s)
	}
}
