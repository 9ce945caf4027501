package server

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
)

// pipeTee gives stdout and the reader the same bytes, whatever the pace
// of the writer into stdin and of the reader of stdout: small writes that
// leave stdin empty, a slow reader that leaves stdout full.
func TestPipeTee(t *testing.T) {
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	in, out := newPipeTee(inR, outW)
	if _, ok := in.(*pipeTee); !ok {
		t.Fatal("two pipes: want a pipeTee")
	}
	data := []byte(text(4 << 20))
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(100<<10))
			if _, err := inW.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
			runtime.Gosched()
		}
		_ = inW.Close()
	}()
	stdout := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		p := make([]byte, 3000) // slower than the tee
		for {
			n, err := outR.Read(p)
			b.Write(p[:n])
			if err != nil {
				stdout <- b.Bytes()
				return
			}
		}
	}()
	var got bytes.Buffer
	buf := make([]byte, bufSize)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			got.Write(buf[:n])
			if _, werr := out.Write(buf[:n]); werr != nil {
				t.Fatalf("stdout: %v", werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = outW.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("read %d bytes, not the %d written", got.Len(), len(data))
	}
	if s := <-stdout; !bytes.Equal(s, data) {
		t.Errorf("stdout got %d bytes, not the %d written", len(s), len(data))
	}
}

// A broken stdout: Write says so once, reading goes on, and then Write
// writes.
func TestPipeTeeBrokenStdout(t *testing.T) {
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	_ = outR.Close()
	in, out := newPipeTee(inR, outW)
	feed(inW, "abc")
	buf := make([]byte, 10)
	n, err := in.Read(buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if _, err := out.Write(buf[:n]); !errors.Is(err, syscall.EPIPE) || err.Error() != "write |1: broken pipe" {
		t.Errorf("write: %v, want EPIPE", err)
	}
	if _, err := out.Write(buf[:n]); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("second write: %v, want EPIPE from a plain write", err)
	}
	if n, err := in.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v", n, err)
	}
}
