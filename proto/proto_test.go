package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	in := Hello{Version: Version, Command: "ls -l", TTY: true, Term: "xterm", Rows: 24, Cols: 80, Env: map[string]string{"LANG": "C.UTF-8"}}
	if err := WriteMessage(&b, TypeHello, in); err != nil {
		t.Fatal(err)
	}
	var out Hello
	if err := Expect(&b, TypeHello, &out); err != nil {
		t.Fatal(err)
	}
	if out.Command != in.Command || out.Rows != 24 || out.Env["LANG"] != "C.UTF-8" {
		t.Fatalf("got %+v", out)
	}
}

func TestExpectError(t *testing.T) {
	var b bytes.Buffer
	_ = WriteMessage(&b, TypeError, Error{Message: "no such command"})
	var s Started
	err := Expect(&b, TypeStarted, &s)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "no such command" {
		t.Fatalf("err %v", err)
	}
	_ = WriteMessage(&b, TypeExit, Exit{})
	if err := Expect(&b, TypeStarted, &s); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("err %v", err)
	}
}

func TestBadInput(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, MaxMessage+2)
	for name, in := range map[string][]byte{
		"empty":       nil,
		"short":       {0, 0},
		"zero length": {0, 0, 0, 0, 1},
		"huge":        append(huge, 1),
		"truncated":   {0, 0, 0, 9, 2, '{'},
	} {
		if _, _, err := ReadMessage(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, _, err := ReadMessage(bytes.NewReader(append(huge, 1))); !errors.Is(err, ErrTooLong) {
		t.Fatalf("huge: %v", err)
	}
	var h Hello
	if err := Decode([]byte("{not json"), &h); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func FuzzReadMessage(f *testing.F) {
	var b bytes.Buffer
	_ = WriteMessage(&b, TypeTransferOpen, TransferOpen{Op: OpRead, Path: "a.csv"})
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, 1, 7})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			typ, body, err := ReadMessage(r)
			if err != nil {
				if len(body) != 0 {
					t.Fatal("body with error")
				}
				return
			}
			if len(body) > MaxMessage {
				t.Fatalf("body of %d bytes", len(body))
			}
			for _, v := range []any{&Hello{}, &Exit{}, &TransferOpen{}, &TransferReply{}, &Signal{}} {
				_ = Decode(body, v)
			}
			_ = typ
			if r.Len() == 0 {
				return
			}
		}
	})
}

var _ = io.EOF
