package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// pass does a transfer in the tool's place (spec.md §3.3): lcat passed its
// stdout, ltee its stdin and stdout. reshd opens a stream to the client for
// each path, tells the tool the client's replies, copies, closes the
// descriptors, and tells the tool the outcome in a TransferDone. Should the
// tool go away (its connection ends), the copy stops; a write's data then
// ends marked incomplete.
func (b *broker) pass(j *job, p proto.TransferPass, fds []int) {
	c := j.c
	files, err := takeOver(p, fds)
	if err != nil {
		b.refuse(c, "reshd: "+err.Error()) // the tool falls back on the relay
		return
	}
	b.passed.Add(1)
	closeFiles := sync.OnceFunc(func() {
		for _, f := range files {
			_ = f.Close()
		}
	})
	defer closeFiles()

	// The tool sends nothing more: the end of its connection means it is
	// gone. Then stop reading and writing its descriptors.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var one [1]byte
		_, _ = c.Read(one[:])
		j.cancel()
	}()
	defer func() {
		_ = c.Close()
		<-watched
	}()
	// Gone, the tool no longer needs its descriptors: let go of them at
	// once (the command's output they may be ends), whatever the copy
	// waits for.
	cut := context.AfterFunc(j.ctx, func() {
		for _, f := range files {
			_ = f.SetDeadline(time.Now())
		}
		closeFiles()
	})
	defer cut()

	streams, replies := b.openAll(j, p)
	defer func() {
		for _, st := range streams {
			if st != nil {
				_ = st.Close()
			}
		}
	}()
	for _, r := range replies {
		_ = proto.WriteMessage(c, proto.TypeTransferReply, r)
	}
	done := func(d proto.TransferDone) {
		closeFiles() // before the tool exits: the reader of its stdout sees the end
		_ = proto.WriteMessage(c, proto.TypeTransferDone, d)
	}

	if p.Op == proto.OpRead {
		st := streams[0]
		if st == nil {
			return // refused: the tool has its answer
		}
		// A copy waiting for the client (a FIFO there that delivers
		// nothing) ends when the tool is gone.
		wake := context.AfterFunc(j.ctx, func() { _ = st.SetReadDeadline(time.Now()) })
		err := cat.Copy(j.ctx, files[0], st, p.Paths[0], replies[0].Size)
		wake()
		var d proto.TransferDone
		var we *cat.WriteError
		switch {
		case err == nil:
		case errors.As(err, &we) && p.SIGPIPE && errors.Is(err, syscall.EPIPE):
			d.SIGPIPE = true
		case errors.As(err, &we):
			d.Errors, d.Stdout = []string{err.Error()}, true
		default:
			d.Errors = []string{err.Error()}
		}
		done(d)
		if err != nil {
			// Our end of the stream tells the client to stop (spec.md
			// §3.1): read what is under way, so that it is never stuck on
			// a full window.
			_ = st.Close()
			_ = st.SetReadDeadline(time.Time{})
			_, _ = io.Copy(io.Discard, st)
		}
		return
	}

	var sinks []*tee.Sink
	for i, st := range streams {
		if st != nil {
			sinks = append(sinks, tee.NewSink(p.Paths[i], streamConn{st}, replies[i].Chunks))
		}
	}
	var onSIGPIPE func()
	if p.SIGPIPE {
		onSIGPIPE = func() { done(proto.TransferDone{SIGPIPE: true}) }
	}
	msgs, piped := tee.Copy(j.ctx, files[0], files[1], sinks, onSIGPIPE)
	if !piped {
		done(proto.TransferDone{Errors: msgs})
	}
}

// openAll opens a stream to the client for each path at once and returns
// the client's replies in order, with the streams of the accepted paths.
func (b *broker) openAll(j *job, p proto.TransferPass) ([]*yamux.Stream, []proto.TransferReply) {
	streams := make([]*yamux.Stream, len(p.Paths))
	replies := make([]proto.TransferReply, len(p.Paths))
	var wg sync.WaitGroup
	for i, path := range p.Paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			open := proto.TransferOpen{Op: p.Op, Path: path, Tool: p.Tool, Chunks: p.Op != proto.OpRead}
			st, err := b.openStream(j, open)
			if err != nil {
				replies[i].Error = err.Error()
				return
			}
			if err := proto.Expect(st, proto.TypeTransferReply, &replies[i]); err != nil {
				replies[i] = proto.TransferReply{Error: proto.Describe(err)}
			}
			if !replies[i].OK {
				_ = st.Close()
				return
			}
			streams[i] = st
		}()
	}
	wg.Wait()
	return streams, replies
}

// takeOver turns the descriptors a tool passed into the files reshd uses
// in its place: stdout for a read, stdin and stdout for a write. It closes
// every descriptor it does not return, and says why it declines.
func takeOver(p proto.TransferPass, fds []int) ([]*os.File, error) {
	var want []bool // for writing
	switch {
	case !knownOp(p.Op):
		closeFDs(fds)
		return nil, fmt.Errorf("unknown transfer op %q", p.Op)
	case p.Op == proto.OpRead && len(p.Paths) == 1:
		want = []bool{true}
	case p.Op != proto.OpRead && len(p.Paths) > 0:
		want = []bool{false, true}
	default:
		closeFDs(fds)
		return nil, fmt.Errorf("%s of %d paths", p.Op, len(p.Paths))
	}
	if len(fds) != len(want) {
		closeFDs(fds)
		return nil, fmt.Errorf("%s needs %d descriptors, got %d", p.Op, len(want), len(fds))
	}
	names := []string{"/dev/stdout"}
	if len(want) == 2 {
		names = []string{"/dev/stdin", "/dev/stdout"}
	}
	var files []*os.File
	for i, fd := range fds {
		f, err := handOver(fd, want[i], names[i])
		if err != nil {
			closeFDs(fds[i+1:])
			for _, f := range files {
				_ = f.Close()
			}
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
		files = append(files, f)
	}
	return files, nil
}

// streamConn is a stream to the client as ltee's copy writes it.
type streamConn struct{ *yamux.Stream }

// CloseWrite half-closes, as Close does on a yamux stream.
func (s streamConn) CloseWrite() error { return s.Stream.Close() }
