package tee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"resh/access"
	"resh/proto"
)

// Meter follows one transfer for the user (the same as cat.Meter).
type Meter interface {
	// Opened says that the file is open; size is its size then (0 once
	// truncated, what an append starts after), -1 if it is not a regular
	// file.
	Opened(size int64)
	// Update reports the bytes written so far.
	Update(n int64)
}

// PartialSuffix is added to the name of a file whose write was cut
// (spec.md §3.4): out.txt becomes out.txt.partial, or out.txt.partial.1 if
// that name is taken, and so on.
const PartialSuffix = ".partial"

// IncompleteError is returned by ServeWrite when the data of a write did
// not arrive whole (ltee was killed, its input failed, the session ended):
// the file holds only what arrived. A file written over was renamed to
// Kept; one appended to stays in place, complete up to Offset+Bytes.
type IncompleteError struct {
	Path   string // as ltee named it
	Reason string
	Bytes  int64  // bytes written before the cut
	Append bool   // -a: the file stays, complete up to Offset+Bytes
	Offset int64  // where the append started
	Kept   string // the name it was renamed to ("" if it could not be)
	Failed string // why it could not be renamed
}

func (e *IncompleteError) Error() string { return "ltee: " + e.Message() }

// Message is the notice for the user: "out.txt was cut after N bytes
// (why): kept as out.txt.partial".
func (e *IncompleteError) Message() string {
	cut := fmt.Sprintf("%s was cut after %d bytes (%s)", e.Path, e.Bytes, e.Reason)
	switch {
	case e.Append:
		return fmt.Sprintf("%s: the append at offset %d is incomplete from offset %d", cut, e.Offset, e.Offset+e.Bytes)
	case e.Kept != "":
		return fmt.Sprintf("%s: kept as %s", cut, e.Kept)
	}
	return fmt.Sprintf("%s: left as it is (%s)", cut, e.Failed)
}

// ServeWrite is the client's half of ltee: it creates (OpWrite) or appends
// to (OpAppend) the file named by open, answers with a TransferReply (a
// refusal carries the message for the user), writes every byte read from
// stream until its EOF, closes the file, and sends a TransferResult with the
// byte count or the error that interrupted writing; then it closes stream
// (a half-close on a yamux stream).
//
// When the tool offers chunks (open.Chunks), ServeWrite takes them: the
// data then ends with an end mark saying whether it is complete (spec.md
// §3.4). Data that is not complete, or a stream that breaks (ctx's end
// breaks it too), is a cut: ServeWrite sets a written-over file aside as
// NAME.partial and returns an *IncompleteError.
func ServeWrite(ctx context.Context, stream io.ReadWriteCloser, open proto.TransferOpen, dirs *access.Dirs, m Meter) error {
	defer stream.Close()
	if open.Op != proto.OpWrite && open.Op != proto.OpAppend {
		msg := fmt.Sprintf("ltee: unsupported operation %q", open.Op)
		_ = proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: msg})
		return errors.New(msg)
	}
	appendMode := open.Op == proto.OpAppend
	f, err := dirs.Create(open.Path, appendMode)
	if err != nil {
		if werr := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{Error: err.Error()}); werr != nil {
			return fmt.Errorf("ltee %s: cannot answer reshd: %w", open.Path, werr)
		}
		return fmt.Errorf("ltee: %w", err)
	}
	defer f.Close()
	offset := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		offset = st.Size()
	}
	if m != nil {
		m.Opened(offset)
	}
	if err := proto.WriteMessage(stream, proto.TypeTransferReply, proto.TransferReply{OK: true, Chunks: open.Chunks}); err != nil {
		return fmt.Errorf("ltee %s: cannot answer reshd: %w", open.Path, err)
	}
	// The end of the session ends a read of the stream, or a write to an
	// allowed FIFO, waiting.
	defer context.AfterFunc(ctx, func() {
		_ = f.SetWriteDeadline(time.Now())
		if d, ok := stream.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(time.Now())
		}
	})()
	var src io.Reader = stream
	var chunks *proto.ChunkReader
	if open.Chunks {
		chunks = proto.NewChunkReader(stream)
		src = chunks
	}

	var n, got int64 // bytes written, bytes received
	var werr error   // the first error writing the file
	var broken error // the stream broke before its end
	buf := make([]byte, 256<<10)
	for {
		k, rerr := src.Read(buf)
		got += int64(k)
		if k > 0 && werr == nil {
			var w int
			w, werr = f.Write(buf[:k])
			n += int64(w)
			if m != nil {
				m.Update(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			broken = rerr
			break
		}
		// After a write error keep reading, so that the tool is not
		// blocked, and report the error in the result.
	}

	cut := ""
	switch {
	case broken != nil && ctx.Err() != nil:
		cut = "the resh session ended"
	case errors.Is(broken, io.ErrUnexpectedEOF) && chunks != nil:
		cut = "the data ended without its end mark: ltee or reshd was killed"
	case broken != nil:
		cut = "receiving: " + broken.Error()
	case chunks != nil && !chunks.End.OK:
		cut = chunks.End.Error
	case chunks != nil && chunks.End.Bytes != got:
		cut = fmt.Sprintf("got %d bytes, reshd sent %d", got, chunks.End.Bytes)
	}
	if cut != "" && werr == nil {
		inc := &IncompleteError{Path: open.Path, Reason: cut, Bytes: n, Append: appendMode && offset >= 0, Offset: offset}
		if !inc.Append && offset >= 0 {
			if inc.Kept, err = dirs.SetAside(open.Path, f, PartialSuffix); err != nil {
				inc.Failed = err.Error()
			}
		} else if offset < 0 {
			inc.Failed = "not a regular file"
		}
		if broken == nil {
			_ = result(stream, open.Path, n, f.Close())
		}
		return inc
	}
	if broken != nil {
		return fmt.Errorf("ltee %s: %w", open.Path, broken)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if err := result(stream, open.Path, n, werr); err != nil {
		return fmt.Errorf("ltee %s: cannot send the result: %w", open.Path, err)
	}
	if werr != nil {
		return fmt.Errorf("ltee %s: %w", open.Path, werr)
	}
	return nil
}

// result sends the TransferResult of n bytes written, or of the write error
// werr.
func result(stream io.Writer, path string, n int64, werr error) error {
	res := proto.TransferResult{OK: werr == nil, Bytes: n}
	if werr != nil {
		cause := werr
		var pe *fs.PathError
		if errors.As(werr, &pe) {
			cause = pe.Err
		}
		res.Error = fmt.Sprintf("%s: %v", path, cause)
	}
	return proto.WriteMessage(stream, proto.TypeTransferResult, res)
}
