package scheduler

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/proto"
	"resh/store"
)

// Attach streams a job live: JobState queued then running, the output as
// it is stored, then the verdict and exit.
func TestAttachLive(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	sk := newSink()
	result := h.attach(owner, j.ID, 0, 0, sk)
	sk.waitFor(t, "queued", func() bool { return len(sk.states) == 1 })
	assert.Equal(t, proto.JobState{State: "queued"}, sk.states[0])

	h.fc.addExecutor("e1", 1, "python")
	c := h.fc.run(t, 1)
	c.out(cluster.JobStdout, 0, "one\n")
	sk.waitFor(t, "the output", func() bool { return string(sk.out[store.Stdout]) == "one\n" })
	c.out(cluster.JobStderr, 0, "two\n")
	sk.waitFor(t, "the stderr", func() bool { return string(sk.out[store.Stderr]) == "two\n" })
	c.end(cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 3}, Exit: proto.Exit{Code: 3}})
	require.NoError(t, result())
	assert.Equal(t, proto.JobState{State: "running", Executor: "e1", Attempt: 1}, sk.states[len(sk.states)-1])
	assert.Equal(t, proto.VerdictRuntimeError, sk.verdict.Verdict)
	assert.Equal(t, proto.Exit{Code: 3}, *sk.exit)
	assert.Equal(t, "end:RUNTIME_ERROR", sk.events[len(sk.events)-1])
	got, err := h.st.Get(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, 3, got.ExitCode)
}

// Attach from offsets writes the rest of each stream, no gap, no
// duplicate; offsets past the end write nothing.
func TestAttachFromOffsets(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	c := h.fc.run(t, 1)
	c.out(cluster.JobStdout, 0, "abcdef")
	c.out(cluster.JobStderr, 0, "123")
	c.end(okEnd("e1"))
	h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })

	sk := newSink()
	require.NoError(t, h.attach(owner, j.ID, 4, 1, sk)())
	assert.Equal(t, "ef", string(sk.out[store.Stdout]))
	assert.Equal(t, "23", string(sk.out[store.Stderr]))
	sk = newSink()
	require.NoError(t, h.attach(owner, j.ID, 100, 100, sk)())
	assert.Empty(t, sk.out[store.Stdout])
	assert.Equal(t, proto.VerdictOK, sk.verdict.Verdict)

	require.ErrorIs(t, h.s.Attach(context.Background(), owner, j.ID, -1, 0, newSink()), ErrBadRequest)
}

// An attempt lost with its executor: the job is queued again, its output
// discarded; an attached client gets JobState queued then running again
// and the new attempt's output from byte 0.
func TestAttachLostAttemptStartsAtZero(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	sk := newSink()
	result := h.attach(owner, j.ID, 0, 0, sk)
	sk.waitFor(t, "queued", func() bool { return len(sk.states) == 1 })
	h.fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	c.out(cluster.JobStdout, 0, "lost attempt\n")
	sk.waitFor(t, "the first attempt's output", func() bool { return len(sk.out[store.Stdout]) > 0 })

	h.fc.addExecutor("e2", 1, "python")
	h.fc.setRoom("e1", 0)
	h.s.OnLost("e1")
	c2 := h.fc.run(t, 2)
	assert.Equal(t, "e2", c2.executor)
	assert.Equal(t, int64(3), c2.lease, "claim 1, expire 2, claim 3")
	c2.out(cluster.JobStdout, 0, "new\n")
	c2.end(okEnd("e2"))
	require.NoError(t, result())
	assert.Equal(t, "lost attempt\nnew\n", string(sk.out[store.Stdout]), "the new attempt from byte 0")
	var states []string
	for _, s := range sk.states {
		states = append(states, s.State)
	}
	assert.Equal(t, []string{"queued", "running", "queued", "running"}, states)
	assert.Equal(t, proto.JobState{State: "running", Executor: "e2", Attempt: 2}, sk.states[len(sk.states)-1])
	got, err := h.st.Get(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(4), got.StdoutLen)
}

// A job whose executor is lost on each of its attempts fails with
// EXECUTOR_LOST, exit 120.
func TestExecutorLostOnEveryAttempt(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	h.placed(1)
	h.fc.addExecutor("e2", 1, "python")
	h.s.OnLost("e1")
	h.placed(2)
	h.s.OnLost("e2")
	got := h.waitJob(j.ID, "failed", func(j store.Job) bool { return j.State == store.Failed })
	assert.Equal(t, store.ReasonExecutorLost, got.Reason)
	sk := newSink()
	require.NoError(t, h.attach(owner, j.ID, 0, 0, sk)())
	assert.Equal(t, proto.VerdictExecutorLost, sk.verdict.Verdict)
	assert.Equal(t, proto.Exit{Code: proto.ExitExecutorLost}, *sk.exit)
	h.fc.mu.Lock()
	defer h.fc.mu.Unlock()
	assert.Len(t, h.fc.runs, 2, "1 + 1 retry")
}

// With -job-retries 0 (NoRetries) the first loss fails the job.
func TestNoRetries(t *testing.T) {
	h := newHarness(t, Config{Retries: NoRetries})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	h.placed(1)
	h.s.OnLost("e1")
	got := h.waitJob(j.ID, "failed", func(j store.Job) bool { return j.State == store.Failed })
	assert.Equal(t, 1, got.Attempts)
}

// pausingStore holds the first ReadOutput of stdout past byte 0 made after
// it is armed, until the test lets it go on.
type pausingStore struct {
	store.Store
	armed   atomic.Bool
	entered chan struct{}
	proceed chan struct{}
}

func (p *pausingStore) ReadOutput(ctx context.Context, id int64, s store.Stream, from int64, maxBytes int) ([]byte, int64, int64, error) {
	if s == store.Stdout && from > 0 && p.armed.CompareAndSwap(true, false) {
		close(p.entered)
		<-p.proceed
	}
	return p.Store.ReadOutput(ctx, id, s, from, maxBytes)
}

// An attempt that takes the lost one's place between Attach's look at the
// job and its read of the output: the bytes read belong to the new attempt
// at the old one's offset, and must not be sent; the client gets the new
// attempt from byte 0, once, whether that attempt still runs when Attach
// looks again or has ended.
func TestAttachAttemptChangesDuringRead(t *testing.T) {
	for _, endedFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "ended"}[endedFirst], func(t *testing.T) {
			st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "jobs.db"), nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			ps := &pausingStore{Store: st, entered: make(chan struct{}), proceed: make(chan struct{})}
			h := startOn(t, ps, newFakeCluster(), Config{})
			j := h.submit("x")
			sk := newSink()
			result := h.attach(owner, j.ID, 0, 0, sk)
			h.fc.addExecutor("e1", 1, "python")
			c := h.placed(1)
			c.out(cluster.JobStdout, 0, "a\n")
			sk.waitFor(t, "the first attempt's output", func() bool { return len(sk.out[store.Stdout]) == 2 })

			ps.armed.Store(true)
			c.out(cluster.JobStdout, 2, "b\n") // Attach looks at the job (running, lease 1), then reads from byte 2
			select {
			case <-ps.entered:
			case <-time.After(wait):
				t.Fatal("Attach did not read stdout past byte 0")
			}
			h.fc.addExecutor("e2", 1, "python")
			h.fc.setRoom("e1", 0)
			h.s.OnLost("e1")
			c2 := h.fc.run(t, 2)
			c2.out(cluster.JobStdout, 0, "new output\n")
			h.waitJob(j.ID, "the new attempt's output stored", func(j store.Job) bool { return j.Lease == c2.lease && j.StdoutLen == 11 })
			if endedFirst {
				c2.end(okEnd("e2"))
				h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
			}
			close(ps.proceed)
			if !endedFirst {
				sk.waitFor(t, "the new attempt's output", func() bool { return strings.HasSuffix(string(sk.out[store.Stdout]), "new output\n") })
				c2.end(okEnd("e2"))
			}
			require.NoError(t, result())
			assert.Equal(t, "a\nnew output\n", string(sk.out[store.Stdout]), "the lost attempt's bytes, then the new attempt's from byte 0, none at the old offset")
			// The restart is told (queued) between the two attempts' output.
			tail := sk.events[slices.Index(sk.events, "out:stdout:a\n")+1:]
			require.Contains(t, tail, "state:queued")
			assert.Less(t, slices.Index(tail, "state:queued"), slices.Index(tail, "out:stdout:new output\n"), "%q", sk.events)
		})
	}
}
