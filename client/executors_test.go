package client

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
)

func TestWriteExecutors(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	require.NoError(t, writeExecutors(&b, []proto.ExecutorInfo{
		{Name: "build-1", Addr: "10.0.0.7:51234", State: proto.StateUp, Tasks: 3, MaxTasks: 8, CPU: 12.4, MaxCPU: 100,
			Languages: []string{"c", "python"}, Version: "0.9.0", Since: now.Add(-3*time.Minute - 12*time.Second)},
		{Name: "local-1", Addr: "127.0.0.1:40000", State: proto.StateLost, Tasks: 0, MaxTasks: 2, CPU: 99.6,
			Version: "0.9.0", Since: now.Add(-2*time.Hour - 5*time.Minute)},
		{Name: "host", Addr: "in-process", State: proto.StateFull, Tasks: 5, CPU: 0, Languages: []string{"go"}},
		{Name: "evil", State: "up\x1b[2J", Version: "1\t2"},
	}, now))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 5)
	want := [][]string{
		{"NAME", "ADDRESS", "STATE", "TASKS", "CPU", "LANGUAGES", "VERSION", "SINCE"},
		{"build-1", "10.0.0.7:51234", "up", "3/8", "12%", "c,python", "0.9.0", "3m12s"},
		{"local-1", "127.0.0.1:40000", "lost", "0/2", "100%", "-", "0.9.0", "2h5m"},
		{"host", "in-process", "full", "5/-", "0%", "go", "-", "-"},
		{"evil", "-", "up?[2J", "0/-", "0%", "-", "1?2", "-"},
	}
	for i, l := range lines {
		assert.Equal(t, want[i], strings.Fields(l), "line %d: %q", i, l)
	}
	// Aligned: every column starts at the same offset on every line.
	for col := 1; col < 8; col++ {
		at := strings.Index(lines[0], want[0][col])
		for i, l := range lines[1:] {
			assert.Equal(t, want[i+1][col], strings.Fields(l[at:])[0], "column %s of line %d: %q", want[0][col], i+1, l)
			assert.Equal(t, byte(' '), l[at-1], "line %d: %q", i+1, l)
		}
	}
}

// TestExecutorsQuery: -executors sends a Hello with the query and no
// command, and prints the table of the answer.
func TestExecutorsQuery(t *testing.T) {
	var hello proto.Hello
	port := startFake(t, func(s *fakeSession) {
		hello = s.hello
		s.send(proto.TypeExecutors, proto.Executors{Executors: []proto.ExecutorInfo{
			{Name: "a", Addr: "10.0.0.1:1000", State: proto.StateUp, Tasks: 1, MaxTasks: 4, CPU: 7, Version: "0.9.0",
				Since: time.Now().Add(-3*time.Minute - 12*time.Second - 300*time.Millisecond)},
			{Name: "b", Addr: "10.0.0.2:1000", State: proto.StateStarting, Languages: []string{"c", "java"}},
		}})
		s.control.Close()
	})
	code, stdout, stderr := runClient(t, port, Options{ListExecutors: true, User: "alice"}, "", "", nil)
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Empty(t, stderr)
	assert.Equal(t, proto.Hello{Version: proto.Version, Query: proto.QueryExecutors, User: "alice"}, hello)
	assert.Regexp(t, `^NAME  ADDRESS        STATE     TASKS  CPU  LANGUAGES  VERSION  SINCE
a     10\.0\.0\.1:1000  up        1/4    7%   -          0\.9\.0    3m1[23]s
b     10\.0\.0\.2:1000  starting  0/-    0%   c,java     -        -
$`, stdout)
}

// TestExecutorsQueryRefused: an Error instead of the table is printed, 255.
func TestExecutorsQueryRefused(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeError, proto.Error{Message: "reshd: not allowed"})
		s.control.Close()
	})
	code, stdout, stderr := runClient(t, port, Options{ListExecutors: true}, "", "", nil)
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "resh: reshd: not allowed\n", stderr)
}

// TestExecutorsQueryOldServer: a reshd that ignores the query and starts
// a shell is told apart.
func TestExecutorsQueryOldServer(t *testing.T) {
	port := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeStarted, proto.Started{})
		_, _ = io.Copy(io.Discard, s.stdin)
	})
	code, _, stderr := runClient(t, port, Options{ListExecutors: true}, "", "", nil)
	assert.Equal(t, 255, code)
	assert.Regexp(t, `^resh: reshd at 127\.0\.0\.1:\d+ cannot list executors: it is older than masters and executors\n$`, stderr)
}
