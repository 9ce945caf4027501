//go:build linux

package server

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// lcat whose reader goes away, reshd copying or relaying: the client stops
// reading the file at once, a few windows in, not at its end.
func TestLcatReaderGoneStopsClient(t *testing.T) {
	const size = 32 << 20
	dir := t.TempDir()
	writeFile(t, dir, "big", strings.Repeat("0123456789abcde\n", size/16))
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	for _, relay := range []bool{false, true} {
		r, w := pipe(t)
		go func() {
			_, _ = io.ReadFull(r, make([]byte, 1000))
			_ = r.Close() // head -c 1000
		}()
		var out io.Writer = w
		if relay {
			out = hideFile{w}
		}
		var errb bytes.Buffer
		code := cat.Remote(t.Context(), b.path, []string{"big"}, nil, out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "broken pipe") {
			t.Errorf("relay %v: exit %d, stderr %q", relay, code, errb.String())
		}
		var stopped *cat.StoppedError
		select {
		case res := <-results:
			if !errors.As(res.err, &stopped) || stopped.Sent > 16<<20 {
				t.Errorf("relay %v: client %v; want it stopped well before %d bytes", relay, res.err, size)
			} else {
				t.Logf("relay %v: the client sent %d of %d bytes", relay, stopped.Sent, size)
			}
		case <-time.After(testTimeout):
			t.Fatalf("relay %v: the client still sends", relay)
		}
	}
	counts(t, b, 1, 1)
}

// An ltee killed in the middle of its data, relayed: it offered chunks, so
// the client tells it from one that finished, and sets the file aside.
func TestRelayKilledLtee(t *testing.T) {
	dir := t.TempDir()
	serve, results := realClient(t, dir)
	b := startBroker(t, serve)
	c, reply, err := proto.OpenTransfer(t.Context(), b.path, proto.TransferOpen{Op: proto.OpWrite, Path: "k", Tool: "ltee", Chunks: true})
	if err != nil || !reply.OK || !reply.Chunks {
		t.Fatalf("open: %+v, %v; want chunks taken", reply, err)
	}
	b0 := append(make([]byte, proto.ChunkHeader), "first part\n"...)
	proto.PutChunkHeader(b0)
	if _, err := c.Write(b0); err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // kill -9: the connection ends, no end mark
	r := <-results
	var inc *tee.IncompleteError
	if !errors.As(r.err, &inc) || inc.Kept != "k.partial" {
		t.Fatalf("client: %v, want the file cut and set aside", r.err)
	}
	if got := readFile(t, dir, "k.partial"); got != "first part\n" {
		t.Errorf("k.partial: %q", got)
	}
	if _, err := os.Lstat(dir + "/k"); !os.IsNotExist(err) {
		t.Errorf("k still there: %v", err)
	}

	// The relayed ltee that finishes: complete, under its name.
	r1, w1 := pipe(t)
	feed2 := "all of it\n"
	go func() { _, _ = io.WriteString(w1, feed2); _ = w1.Close() }()
	var errb bytes.Buffer
	if code := tee.Remote(t.Context(), b.path, []string{"whole"}, false, hideFile{r1}, io.Discard, &errb); code != 0 {
		t.Fatalf("ltee: exit %d, %q", code, errb.String())
	}
	if r := <-results; r.err != nil || !r.open.Chunks {
		t.Errorf("client: %+v; want chunks offered and a complete file", r)
	}
	if got := readFile(t, dir, "whole"); got != feed2 {
		t.Errorf("whole: %q", got)
	}
	counts(t, b, 0, 2)
}
