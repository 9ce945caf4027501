package tee

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"resh/access"
	"resh/proto"
)

// IncompleteError is returned by ServeWrite when the remote side could not
// send the whole stream (ltee was killed, its input failed): the file
// holds only what arrived.
type IncompleteError struct {
	Path   string // as ltee named it
	Reason string
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("tee: %s is incomplete: %s", e.Path, e.Reason)
}

// ServeWrite is the client's half of ltee: it creates (OpWrite) or appends
// to (OpAppend) the file named by open, answers with a TransferReply (a
// refusal carries the message for the user), writes every byte read from
// stream until its EOF, closes the file, and sends a TransferResult with the
// byte count or the error that interrupted writing; then it closes stream
// (a half-close on a yamux stream). progress, if not nil, is called with the
// number of bytes written so far.
//
// When reshd offers chunks (open.Chunks), ServeWrite takes them: the data
// then ends with an end mark saying whether it is complete (spec.md §3.4),
// and ServeWrite returns an error for data that is not, after writing and
// closing what came.
func ServeWrite(stream io.ReadWriteCloser, open proto.TransferOpen, dirs *access.Dirs, progress func(n int64)) error {
	defer stream.Close()
	if open.Op != proto.OpWrite && open.Op != proto.OpAppend {
		msg := fmt.Sprintf("ltee: unsupported operation %q", open.Op)
		_ = proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: msg})
		return fmt.Errorf("tee: %s", msg)
	}
	f, err := dirs.Create(open.Path, open.Op == proto.OpAppend)
	if err != nil {
		if werr := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: err.Error()}); werr != nil {
			return fmt.Errorf("tee: reply: %w", werr)
		}
		return fmt.Errorf("tee: %w", err)
	}
	if err := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{OK: true, Chunks: open.Chunks}); err != nil {
		f.Close()
		return fmt.Errorf("tee: reply: %w", err)
	}
	var src io.Reader = stream
	var chunks *proto.ChunkReader
	if open.Chunks {
		chunks = proto.NewChunkReader(stream)
		src = chunks
	}

	var n, got int64 // bytes written, bytes received
	var werr error   // the first error writing the file
	buf := make([]byte, 256<<10)
	for {
		m, rerr := src.Read(buf)
		got += int64(m)
		if m > 0 && werr == nil {
			var k int
			k, werr = f.Write(buf[:m])
			n += int64(k)
			if progress != nil {
				progress(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return fmt.Errorf("tee: receive %s: %w", open.Path, rerr)
		}
		// After a write error keep reading, so that the tool is not
		// blocked, and report the error in the result.
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	res := proto.TransferResult{OK: werr == nil, Bytes: n}
	if werr != nil {
		cause := werr
		var pe *fs.PathError
		if errors.As(werr, &pe) {
			cause = pe.Err
		}
		res.Error = fmt.Sprintf("%s: %v", open.Path, cause)
	}
	if err := proto.WriteMessage(stream, proto.TypeTransferResult, res); err != nil {
		return fmt.Errorf("tee: result: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("tee: write %s: %w", open.Path, werr)
	}
	if chunks != nil && !chunks.End.OK {
		return &IncompleteError{Path: open.Path, Reason: chunks.End.Error}
	}
	if chunks != nil && chunks.End.Bytes != got {
		return &IncompleteError{Path: open.Path, Reason: fmt.Sprintf("got %d bytes, reshd sent %d", got, chunks.End.Bytes)}
	}
	return nil
}
