package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"resh/proto"
)

// closeWait bounds how long a relay waits, once the executor said all it
// had to (Exit, or the session lost), for the client to close its session,
// as a standalone reshd does.
const closeWait = 5 * time.Second

// killGrace is how long a hung-up relayed command may live before the
// master asks for SIGKILL, as reshd's own.
const killGrace = 3 * time.Second

// idleShrink is how long a relayed stream stays idle before its receive
// buffer is given back.
const idleShrink = time.Second

// relayBuffer is the copy buffer of each relayed stream direction.
const relayBuffer = 256 << 10

// buffers are the relays' copy buffers, taken only while data moves.
var buffers = sync.Pool{New: func() any { b := make([]byte, relayBuffer); return &b }}

// ClientSession is a client's session as the master's front has it once
// its Hello was read (proto/spec.md §2).
type ClientSession struct {
	Mux                            *yamux.Session
	Control, Stdin, Stdout, Stderr *yamux.Stream
	Hello                          proto.Hello
	Log                            *slog.Logger
	// Send writes one message on Control, serialised with the caller's
	// own writes there.
	Send func(t proto.Type, body []byte) error
}

func (cs *ClientSession) send(t proto.Type, v any) {
	body, err := json.Marshal(v)
	if err == nil {
		err = cs.Send(t, body)
	}
	if err != nil {
		cs.Log.Debug("reshd: control write failed", "err", err)
	}
}

// relay is a running relay, for Hangup.
type relay struct {
	mu      sync.Mutex
	control *yamux.Stream // the nested session's
	hupped  bool
}

// Hangup asks the executor to hang up the relayed command (Signal HUP,
// then KILL after a grace), as a standalone reshd hangs up its own
// commands when it shuts down. The Exit comes back as usual.
func (p *Placement) Hangup() {
	r := &p.relay
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hupped {
		return
	}
	r.hupped = true
	if r.control == nil {
		return
	}
	ctl := r.control
	_ = proto.WriteMessage(ctl, proto.TypeSignal, proto.Signal{Name: "HUP"})
	time.AfterFunc(killGrace, func() { _ = proto.WriteMessage(ctl, proto.TypeSignal, proto.Signal{Name: "KILL"}) })
}

// Relay runs the session cs on the executor that accepted it (spec.md §5)
// until it ends, then closes cs.Mux. The caller then calls Done.
func (p *Placement) Relay(cs ClientSession) {
	defer func() { _ = cs.Mux.Close() }()
	name := p.e.name
	lostMsg := fmt.Sprintf("executor %s lost", name)
	emux := p.e.link.relayed(p.stream, p.id)
	defer func() { _ = emux.Close() }()
	var nested [4]*yamux.Stream
	hello := cs.Hello
	hello.On, hello.Query = "", ""
	for i, kind := range []string{proto.KindControl, proto.KindStdin, proto.KindStdout, proto.KindStderr} {
		st, err := emux.OpenStream()
		if err == nil {
			err = proto.WriteMessage(st, proto.TypeOpen, proto.Open{Kind: kind})
		}
		if err == nil && i == 0 {
			err = proto.WriteMessage(st, proto.TypeHello, hello)
		}
		if err != nil {
			cs.Log.Warn("reshd: relay to executor failed", "executor", name, "err", err)
			cs.send(proto.TypeError, proto.Error{Message: "reshd: " + lostMsg + " before the command started"})
			awaitClose(cs.Mux, nil)
			return
		}
		nested[i] = st
	}
	ectl, ein, eout, eerr := nested[0], nested[1], nested[2], nested[3]
	p.relay.mu.Lock()
	p.relay.control = ectl
	hupped := p.relay.hupped
	p.relay.mu.Unlock()
	if hupped {
		_ = proto.WriteMessage(ectl, proto.TypeSignal, proto.Signal{Name: "HUP"})
	}

	var wg sync.WaitGroup
	pipe := func(dst, src *yamux.Stream, stop <-chan struct{}) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyHalf(dst, src, stop)
		}()
	}
	fromClient, fromExecutor := cs.Mux.CloseChan(), emux.CloseChan()
	pipe(ein, cs.Stdin, fromClient)
	pipe(cs.Stdout, eout, fromExecutor)
	pipe(cs.Stderr, eerr, fromExecutor)
	pipe(ectl, cs.Control, fromClient)

	ended := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(ended)
		relayControl(cs, ectl, lostMsg)
	}()
	go func() {
		defer wg.Done()
		relayTransfers(cs.Mux, emux, func(c, e *yamux.Stream) {
			pipe(c, e, fromExecutor)
			pipe(e, c, fromClient)
		})
	}()

	select {
	case <-cs.Mux.CloseChan():
	case <-ended:
		awaitClose(cs.Mux, nil)
	}
	_ = emux.Close()
	_ = cs.Mux.Close()
	wg.Wait()
}

// relayControl copies the executor's control messages to the client,
// message by message, and ends the client's control stream: after Exit
// or a refusal as the executor did, otherwise (the link was lost) with
// Gone, or an Error if the command had not started.
func relayControl(cs ClientSession, ectl *yamux.Stream, lostMsg string) {
	started, final := false, false
	for {
		t, body, err := proto.ReadMessage(ectl)
		if err != nil {
			break
		}
		ectl.Shrink()
		switch t {
		case proto.TypeStarted:
			started = true
		case proto.TypeExit:
			final = true
		case proto.TypeError:
			final = final || !started
		}
		if err := cs.Send(t, body); err != nil {
			break
		}
	}
	switch {
	case final:
	case started:
		cs.Log.Warn("reshd: session ended: " + lostMsg)
		cs.send(proto.TypeGone, proto.Gone{Message: lostMsg})
	default:
		cs.Log.Warn("reshd: session failed: " + lostMsg + " before the command started")
		cs.send(proto.TypeError, proto.Error{Message: "reshd: " + lostMsg + " before the command started"})
	}
	_ = cs.Control.Close()
}

// relayTransfers opens a stream towards the client for each stream the
// executor opens (a transfer, proto/spec.md §3), and copies both ways.
func relayTransfers(client *yamux.Session, emux *SessionMux, both func(toClient, fromExecutor *yamux.Stream)) {
	for {
		es, err := emux.AcceptStream()
		if err != nil {
			return
		}
		cs, err := client.OpenStream()
		if err != nil {
			_ = es.Close()
			continue
		}
		both(cs, es)
	}
}

// copyHalf copies src to dst until src's end, then half-closes dst. A
// dst that fails is drained no more: src is left for the session's end.
func copyHalf(dst, src *yamux.Stream, stop <-chan struct{}) {
	for {
		// Wait for data without a buffer (a yamux Read of nothing returns
		// once something is buffered): an idle relayed stream holds no
		// copy buffer, and once idle for a while gives back yamux's
		// receive buffer too (not at every read: it would be allocated
		// again for the next frame).
		_ = src.SetReadDeadline(time.Now().Add(idleShrink))
		_, err := src.Read(nil)
		if errors.Is(err, yamux.ErrTimeout) {
			src.Shrink()
			_ = src.SetReadDeadline(time.Time{})
			// A SessionMux closes stop, then wakes its streams' reads
			// with a past deadline: look after clearing ours.
			select {
			case <-stop:
				_ = dst.Close()
				return
			default:
			}
			_, err = src.Read(nil)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			_ = dst.Close()
			return
		}
		bp := buffers.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			_, werr := dst.Write((*bp)[:n])
			buffers.Put(bp)
			if werr != nil {
				break
			}
		} else {
			buffers.Put(bp)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// The session is going: nothing to half-close.
				_ = dst.Close()
				return
			}
			break
		}
	}
	_ = dst.Close()
}

// awaitClose waits for the client to close its session, at most
// closeWait, or until stop.
func awaitClose(mux *yamux.Session, stop <-chan struct{}) {
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-mux.CloseChan():
	case <-t.C:
	case <-stop:
	}
}
