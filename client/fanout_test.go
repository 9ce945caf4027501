package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
)

// answerQuery answers the fake's session if it is the -executors query,
// and reports whether it was.
func (s *fakeSession) answerQuery(list ...proto.ExecutorInfo) bool {
	if s.hello.Query != proto.QueryExecutors {
		return false
	}
	s.send(proto.TypeExecutors, proto.Executors{Executors: list})
	s.control.Close()
	return true
}

// TestAll: -all runs the command on every executor up or full, each line
// prefixed with its name, lines from different executors never mixed, no
// stdin; the exit status is the largest, and one line names the failures.
func TestAll(t *testing.T) {
	var mu sync.Mutex
	hellos := map[string]proto.Hello{}
	stdins := map[string]string{}
	// a and e write their line in pieces, in turns.
	turn := map[string]chan struct{}{"a": make(chan struct{}, 1), "e": make(chan struct{}, 1)}
	turn["a"] <- struct{}{}
	port := startFakeN(t, 5, func(s *fakeSession) {
		if s.answerQuery(
			proto.ExecutorInfo{Name: "a", State: proto.StateUp},
			proto.ExecutorInfo{Name: "b", State: proto.StateUp},
			proto.ExecutorInfo{Name: "c", State: proto.StateUp},
			proto.ExecutorInfo{Name: "d", State: proto.StateLost},
			proto.ExecutorInfo{Name: "e", State: proto.StateFull},
			proto.ExecutorInfo{Name: "f", State: proto.StateStarting},
		) {
			return
		}
		on := s.hello.On
		s.send(proto.TypeStarted, proto.Started{})
		in, err := io.ReadAll(s.stdin) // EOF at once
		assert.NoError(t, err)
		mu.Lock()
		hellos[on], stdins[on] = s.hello, string(in)
		mu.Unlock()
		switch on {
		case "a", "e":
			other := map[string]string{"a": "e", "e": "a"}[on]
			for i := range 4 {
				<-turn[on]
				s.write(s.stdout, fmt.Sprintf("%s%d-", on, i))
				turn[other] <- struct{}{}
			}
			s.write(s.stdout, "\n")
			s.write(s.stderr, on+" warns\n")
			s.endCommand(0)
		case "b":
			s.write(s.stdout, "out b\npartial")
			s.endCommand(3)
		case "c":
			s.write(s.stdout, "before\n")
			s.write(s.stderr, "c err")
			s.send(proto.TypeGone, proto.Gone{Message: "executor c lost"})
			s.sess.Close()
		default:
			t.Errorf("a session on %q", on)
		}
	})
	code, stdout, stderr := runClient(t, port, Options{All: true, Command: "echo hi"}, "not sent", "", nil)
	assert.Equal(t, 255, code, "the largest status: c was lost")

	assert.ElementsMatch(t, []string{"a: a0-a1-a2-a3-", "e: e0-e1-e2-e3-", "b: out b", "b: partial", "c: before"},
		strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"), "stdout %q", stdout)
	assert.Less(t, strings.Index(stdout, "b: out b\n"), strings.Index(stdout, "b: partial\n"))
	errLines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	require.Len(t, errLines, 4, "stderr %q", stderr)
	assert.ElementsMatch(t, []string{"a: a warns", "e: e warns", "c: c err"}, errLines[:3])
	assert.Equal(t, "resh: failed on b (exit 3), c (executor c lost)", errLines[3])

	require.Len(t, hellos, 4)
	for _, name := range []string{"a", "b", "c", "e"} {
		h := hellos[name]
		assert.Equal(t, name, h.On)
		assert.Equal(t, "echo hi", h.Command)
		assert.False(t, h.TTY)
		assert.Empty(t, h.Query)
		assert.Empty(t, stdins[name], "no stdin with -all")
	}
}

// TestAllSignalsAndTransfers: with -all every session gets resh's signals
// and serves its own lcat; without a failure of resh the status is the
// largest of the commands'.
func TestAllSignalsAndTransfers(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("client file\n"), 0o644))
	sigs := make(chan os.Signal, 1)
	var sent sync.Once
	port := startFakeN(t, 3, func(s *fakeSession) {
		if s.answerQuery(proto.ExecutorInfo{Name: "x", State: proto.StateUp}, proto.ExecutorInfo{Name: "y", State: proto.StateUp}) {
			return
		}
		s.send(proto.TypeStarted, proto.Started{})
		// lcat in.txt, through this session's own stream.
		st, err := s.sess.OpenStream()
		if !assert.NoError(t, err) {
			return
		}
		assert.NoError(t, proto.WriteMessage(st, proto.TypeTransferOpen, proto.TransferOpen{Op: proto.OpRead, Path: "in.txt", Tool: "lcat"}))
		var reply proto.TransferReply
		assert.NoError(t, proto.Expect(st, proto.TypeTransferReply, &reply))
		assert.True(t, reply.OK, "%+v", reply)
		data, err := io.ReadAll(st)
		assert.NoError(t, err)
		st.Close()
		s.write(s.stdout, string(data))

		sent.Do(func() { sigs <- syscall.SIGTERM })
		var sig proto.Signal
		assert.NoError(t, proto.Expect(s.control, proto.TypeSignal, &sig))
		assert.Equal(t, "TERM", sig.Name)
		s.stdout.Close()
		s.stderr.Close()
		if s.hello.On == "x" {
			s.send(proto.TypeExit, proto.Exit{Signal: int(syscall.SIGTERM)})
		} else {
			s.send(proto.TypeExit, proto.Exit{Code: 5})
		}
	})
	code, stdout, stderr := runClient(t, port, Options{All: true, Command: "lcat in.txt"}, "", dir, sigs)
	assert.Equal(t, 143, code)
	assert.ElementsMatch(t, []string{"x: client file", "y: client file"}, strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"))
	assert.Equal(t, "resh: failed on x (exit 143), y (exit 5)\n", stderr)
}

// TestAllNoneUp: nothing up, nothing run.
func TestAllNoneUp(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		assert.True(t, s.answerQuery(proto.ExecutorInfo{Name: "a", State: proto.StateLost}))
	})
	code, stdout, stderr := runClient(t, port, Options{All: true, Command: "x"}, "", "", nil)
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "resh: no executor is up on 127.0.0.1\n", stderr)
}

// TestOn: -on NAME goes in Hello.
func TestOn(t *testing.T) {
	var hello proto.Hello
	port := startFake(t, func(s *fakeSession) {
		hello = s.hello
		s.send(proto.TypeStarted, proto.Started{})
		s.endCommand(0)
	})
	code, _, stderr := runClient(t, port, Options{On: "gpu-2", Command: "nvidia-smi"}, "", "", nil)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "gpu-2", hello.On)
	assert.Equal(t, "nvidia-smi", hello.Command)
	assert.Empty(t, hello.Query)
}

func TestSummarize(t *testing.T) {
	code, line := summarize([]fanResult{{name: "a"}, {name: "b"}})
	assert.Equal(t, 0, code)
	assert.Empty(t, line)
	code, line = summarize([]fanResult{{name: "a", code: 2}, {name: "b"}, {name: "c", code: 130}, {name: "d", err: errors.New("no executor named d")}})
	assert.Equal(t, 255, code)
	assert.Equal(t, "failed on a (exit 2), c (exit 130), d (no executor named d)", line)
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	sink := &lineSink{w: &b}
	p, q := sink.prefixed("p"), sink.prefixed("q")
	for _, w := range []struct {
		w *prefixWriter
		s string
	}{{p, "one"}, {q, "x\ny"}, {p, " two\nthree\nfo"}, {q, "\n"}, {p, "ur"}, {q, ""}} {
		n, err := w.w.Write([]byte(w.s))
		require.NoError(t, err)
		require.Equal(t, len(w.s), n)
	}
	p.flush()
	q.flush()
	assert.Equal(t, "q: x\np: one two\np: three\nq: y\np: four\n", b.String())

	// A line too long to keep is cut.
	b.Reset()
	long := strings.Repeat("z", maxLine+10)
	_, err := p.Write([]byte(long))
	require.NoError(t, err)
	p.flush()
	assert.Equal(t, "p: "+long[:maxLine+10]+"\n", b.String(), "one write longer than maxLine is kept whole")
	b.Reset()
	_, _ = p.Write([]byte(long[:maxLine-1]))
	_, _ = p.Write([]byte("ab"))
	_, _ = p.Write([]byte("c\n"))
	assert.Equal(t, "p: "+long[:maxLine-1]+"ab\np: c\n", b.String())

	// A write error (a broken pipe) is the writer's.
	bad := (&lineSink{w: errWriter{syscall.EPIPE}}).prefixed("p")
	_, err = bad.Write([]byte("line\n"))
	assert.ErrorIs(t, err, syscall.EPIPE)
}

// errWriter fails every write with err.
type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }
