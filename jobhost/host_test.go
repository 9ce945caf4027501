package jobhost_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"resh/cluster"
	"resh/jobhost"
	"resh/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait for an event.
const testTimeout = 30 * time.Second

// newHost makes a Host closed at the test's end.
func newHost(t *testing.T, cfg jobhost.Config) *jobhost.Host {
	t.Helper()
	if cfg.Executor == "" {
		cfg.Executor = "here"
	}
	h := jobhost.New(cfg)
	t.Cleanup(h.Close)
	return h
}

// start runs an sh (or other) job and fails the test if it is refused.
func start(t *testing.T, h *jobhost.Host, id, lease int64, lang, src, stdin string) *jobhost.Held {
	t.Helper()
	j, err := h.Run(cluster.JobRun{ID: id, Lease: lease, Lang: lang, Name: "prog"}, []byte(src), []byte(stdin))
	require.NoError(t, err)
	return j
}

// got is what a Follow passed on.
type got struct {
	out    [3]strings.Builder // by stream
	chunks []cluster.JobOutput
}

// follow follows j from the offsets to its end, within testTimeout,
// checking that each stream's chunks are in order and without gaps.
func follow(t *testing.T, j *jobhost.Held, from [2]int64) (*got, cluster.JobEnd, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g := &got{}
	pos := [3]int64{0, from[0], from[1]}
	end, err := j.Follow(ctx, from[0], from[1], func(stream int, offset int64, data []byte) error {
		require.Contains(t, []int{cluster.JobStdout, cluster.JobStderr}, stream)
		require.Equal(t, pos[stream], offset, "stream %d: a gap or a duplicate", stream)
		require.LessOrEqual(t, len(data), cluster.MaxJobChunk)
		require.NotEmpty(t, data)
		pos[stream] += int64(len(data))
		g.out[stream].Write(data)
		g.chunks = append(g.chunks, cluster.JobOutput{Stream: stream, Offset: offset, Data: data})
		return nil
	})
	require.NoError(t, ctx.Err(), "Follow did not end within %v", testTimeout)
	return g, end, err
}

// waitRunning waits until h runs n jobs.
func waitRunning(t *testing.T, h *jobhost.Host, n int) {
	t.Helper()
	deadline := time.After(testTimeout)
	for h.Running() != n {
		select {
		case <-h.Changed():
		case <-deadline:
			t.Fatalf("Running is %d, not %d, after %v", h.Running(), n, testTimeout)
		}
	}
}

func TestRunsAJobToItsEnd(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 7, 1, "sh", "cat; echo err >&2; exit 3", "from stdin\n")
	assert.Equal(t, int64(7), j.ID())
	assert.Equal(t, int64(1), j.Lease())
	g, end, err := follow(t, j, [2]int64{0, 0})
	require.NoError(t, err)
	assert.Equal(t, "from stdin\n", g.out[cluster.JobStdout].String())
	assert.Equal(t, "err\n", g.out[cluster.JobStderr].String())
	assert.Equal(t, proto.VerdictRuntimeError, end.Verdict.Verdict)
	assert.Equal(t, 3, end.Exit.Code)
	assert.Equal(t, "here", end.Verdict.Executor)
	assert.Equal(t, []cluster.HeldJob{{ID: 7, Lease: 1, Ended: true}}, h.Held(), "held until released")
	waitRunning(t, h, 0)
}

func TestPythonJobWithoutStdin(t *testing.T) {
	pool := jobhost.NewPool(jobhost.Config{}.Ceiling)
	t.Cleanup(pool.Close) // after the Host's Close
	h := newHost(t, jobhost.Config{Pool: pool})
	j, err := h.Run(cluster.JobRun{ID: 1, Lease: 1, Lang: "python", NoStdin: true},
		[]byte("import sys\nprint(len(sys.stdin.read()), 'bytes read')\n"), nil)
	require.NoError(t, err)
	g, end, err := follow(t, j, [2]int64{0, 0})
	require.NoError(t, err)
	assert.Equal(t, "0 bytes read\n", g.out[cluster.JobStdout].String())
	assert.Equal(t, proto.VerdictOK, end.Verdict.Verdict)
}

func TestUnknownLanguageIsRefused(t *testing.T) {
	h := newHost(t, jobhost.Config{Executor: "ex1"})
	_, err := h.Run(cluster.JobRun{ID: 1, Lease: 1, Lang: "cobol"}, []byte("x"), nil)
	var re *cluster.RefusedError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, cluster.RefuseLang, re.Reason)
	assert.Equal(t, "ex1", re.Executor)
	assert.Contains(t, re.Message, "no language cobol here (have: ")
	assert.Empty(t, h.Held())
}

// TestBigOutputInChunks: the output comes in chunks of at most
// MaxJobChunk, in order, whole.
func TestBigOutputInChunks(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 1, 1, "python", "import sys\nsys.stdout.write('x' * 200000)\nsys.stderr.write('y' * 70000)\n", "")
	g, end, err := follow(t, j, [2]int64{0, 0})
	require.NoError(t, err)
	assert.Equal(t, proto.VerdictOK, end.Verdict.Verdict)
	assert.Equal(t, strings.Repeat("x", 200000), g.out[cluster.JobStdout].String())
	assert.Equal(t, strings.Repeat("y", 70000), g.out[cluster.JobStderr].String())
	assert.GreaterOrEqual(t, len(g.chunks), 200000/cluster.MaxJobChunk+70000/cluster.MaxJobChunk)
}

// TestFollowLiveThenCancel: output comes while the job runs; Cancel ends
// it CANCELLED.
func TestFollowLiveThenCancel(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 3, 9, "sh", "echo first; sleep 60; echo never", "")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lines := make(chan string, 4)
	type result struct {
		end cluster.JobEnd
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := j.Follow(ctx, 0, 0, func(stream int, offset int64, data []byte) error {
			lines <- string(data)
			return nil
		})
		done <- result{end, err}
	}()
	select {
	case l := <-lines:
		assert.Equal(t, "first\n", l)
	case <-ctx.Done():
		t.Fatal("no live output")
	}
	assert.Equal(t, []cluster.HeldJob{{ID: 3, Lease: 9}}, h.Held(), "running")
	assert.Equal(t, 1, h.Running())
	j.Cancel("asked by the user")
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, proto.VerdictCancelled, r.end.Verdict.Verdict)
	assert.Equal(t, "cancelled: asked by the user", r.end.Verdict.Detail)
	assert.Equal(t, proto.Exit{Code: proto.ExitCancelled}, r.end.Exit)
	waitRunning(t, h, 0)

	// From where the follower stopped: nothing more, the end again.
	g, end, err := follow(t, j, [2]int64{6, 0})
	require.NoError(t, err)
	assert.Empty(t, g.chunks)
	assert.Equal(t, proto.VerdictCancelled, end.Verdict.Verdict)
}

// TestAckDropsBytes: bytes below an Ack are gone (ErrJobGap), those above
// are still there.
func TestAckDropsBytes(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 1, 1, "sh", "printf 0123456789; printf abc >&2", "")
	_, _, err := follow(t, j, [2]int64{0, 0})
	require.NoError(t, err)
	j.Ack(4, 1)
	stdout, stderr := j.Acked()
	assert.Equal(t, [2]int64{4, 1}, [2]int64{stdout, stderr})
	_, _, err = follow(t, j, [2]int64{3, 1})
	require.ErrorIs(t, err, cluster.ErrJobGap)
	_, _, err = follow(t, j, [2]int64{4, 0})
	require.ErrorIs(t, err, cluster.ErrJobGap)
	g, end, err := follow(t, j, [2]int64{4, 1})
	require.NoError(t, err)
	assert.Equal(t, "456789", g.out[cluster.JobStdout].String())
	assert.Equal(t, "bc", g.out[cluster.JobStderr].String())
	assert.Equal(t, proto.VerdictOK, end.Verdict.Verdict)
	j.Ack(1000, 1000) // beyond: all of it
	g, _, err = follow(t, j, [2]int64{10, 3})
	require.NoError(t, err)
	assert.Empty(t, g.chunks)
	_, _, err = follow(t, j, [2]int64{11, 3})
	require.Error(t, err, "beyond the end")
}

func TestReleaseForgets(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 5, 2, "sh", "echo hi", "")
	_, _, err := follow(t, j, [2]int64{0, 0})
	require.NoError(t, err)
	got, err := h.Resume(5, 2)
	require.NoError(t, err)
	assert.Same(t, j, got)
	j.Release()
	assert.Empty(t, h.Held())
	_, err = h.Resume(5, 2)
	assert.ErrorIs(t, err, cluster.ErrUnknownJob)
	_, _, err = follow(t, j, [2]int64{0, 0})
	assert.ErrorIs(t, err, cluster.ErrUnknownJob)
}

func TestDropKillsAndForgets(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 5, 2, "sh", "sleep 60", "")
	h.Drop(5, 3) // another lease: nothing
	h.Drop(6, 2) // another job: nothing
	assert.Equal(t, []cluster.HeldJob{{ID: 5, Lease: 2}}, h.Held())
	_, err := h.Resume(5, 3)
	assert.ErrorIs(t, err, cluster.ErrUnknownJob)
	h.Drop(5, 2)
	assert.Empty(t, h.Held())
	waitRunning(t, h, 0)
	_, _, err = follow(t, j, [2]int64{0, 0})
	assert.ErrorIs(t, err, cluster.ErrUnknownJob)
}

func TestEndedJobExpires(t *testing.T) {
	h := newHost(t, jobhost.Config{HoldFor: 50 * time.Millisecond})
	j := start(t, h, 1, 1, "sh", "true", "")
	_, _, err := follow(t, j, [2]int64{0, 0})
	if err != nil && !errors.Is(err, cluster.ErrUnknownJob) { // it may expire first
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(h.Held()) == 0 }, testTimeout, 5*time.Millisecond)
	_, err = h.Resume(1, 1)
	assert.ErrorIs(t, err, cluster.ErrUnknownJob)
}

// TestRunIsIdempotent: the same job under the same lease is the held one;
// under a new lease the old one is killed and forgotten.
func TestRunIsIdempotent(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	a := start(t, h, 1, 1, "sh", "sleep 60", "")
	b := start(t, h, 1, 1, "sh", "echo other", "")
	assert.Same(t, a, b)
	assert.Equal(t, 1, h.Running())
	c := start(t, h, 1, 2, "sh", "echo new", "")
	assert.NotSame(t, a, c)
	_, _, err := follow(t, a, [2]int64{0, 0})
	assert.ErrorIs(t, err, cluster.ErrUnknownJob)
	g, _, err := follow(t, c, [2]int64{0, 0})
	require.NoError(t, err)
	assert.Equal(t, "new\n", g.out[cluster.JobStdout].String())
	assert.Equal(t, []cluster.HeldJob{{ID: 1, Lease: 2, Ended: true}}, h.Held())
	waitRunning(t, h, 0)
}

// TestCloseKillsRunningJobs: Close returns once the jobs are gone, and
// refuses new ones.
func TestCloseKillsRunningJobs(t *testing.T) {
	h := jobhost.New(jobhost.Config{})
	j := start(t, h, 1, 1, "sh", "echo up; sleep 60", "")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	up := make(chan struct{})
	type result struct {
		end cluster.JobEnd
		err error
	}
	done := make(chan result, 1)
	go func() {
		var once bool
		end, err := j.Follow(ctx, 0, 0, func(int, int64, []byte) error {
			if !once {
				once = true
				close(up)
			}
			return nil
		})
		done <- result{end, err}
	}()
	<-up
	h.Close()
	assert.Equal(t, 0, h.Running())
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, proto.VerdictSandboxError, r.end.Verdict.Verdict)
	assert.Contains(t, r.end.Verdict.Detail, "shutting down")
	_, err := h.Run(cluster.JobRun{ID: 2, Lease: 1, Lang: "sh"}, []byte("true"), nil)
	var re *cluster.RefusedError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, cluster.RefuseLeaving, re.Reason)
}

// TestConn: the in-process JobConn passes the output from its offsets,
// then the end, then io.EOF; Release forgets the job.
func TestConn(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 4, 4, "sh", "printf hello; printf oops >&2; exit 1", "")
	c := j.Conn("here", 2, 0)
	assert.Equal(t, "here", c.Executor())
	var out [3]string
	acked := [3]int64{cluster.JobStdout: 2}
	var end *cluster.JobEnd
	for end == nil {
		o, e, err := c.Next()
		require.NoError(t, err)
		if o != nil {
			out[o.Stream] += string(o.Data)
			acked[o.Stream] = o.Offset + int64(len(o.Data))
			require.NoError(t, c.Ack(acked[cluster.JobStdout], acked[cluster.JobStderr]))
		}
		end = e
	}
	assert.Equal(t, "llo", out[cluster.JobStdout])
	assert.Equal(t, "oops", out[cluster.JobStderr])
	assert.Equal(t, 1, end.Exit.Code)
	_, _, err := c.Next()
	assert.ErrorIs(t, err, io.EOF)
	_, _, err = follow(t, j, [2]int64{2, 0})
	assert.ErrorIs(t, err, cluster.ErrJobGap, "acknowledged through the conn")
	require.NoError(t, c.Release())
	assert.Empty(t, h.Held())

	// A conn abandoned mid-way leaves the job held.
	k := start(t, h, 5, 1, "sh", "echo a; sleep 60", "")
	c = k.Conn("here", 0, 0)
	o, _, err := c.Next()
	require.NoError(t, err)
	assert.Equal(t, "a\n", string(o.Data))
	require.NoError(t, c.Close())
	_, _, err = c.Next()
	assert.ErrorIs(t, err, cluster.ErrJobLost)
	assert.Equal(t, []cluster.HeldJob{{ID: 5, Lease: 1}}, h.Held())
	c = k.Conn("here", 2, 0)
	require.NoError(t, c.Cancel("stop"))
	_, end, err = c.Next()
	require.NoError(t, err)
	assert.Equal(t, proto.VerdictCancelled, end.Verdict.Verdict)
	require.NoError(t, c.Close())
}

// TestLongCancelReason: the reason is cut, so that the end fits in a
// message.
func TestLongCancelReason(t *testing.T) {
	h := newHost(t, jobhost.Config{})
	j := start(t, h, 1, 1, "sh", "sleep 60", "")
	j.Cancel(strings.Repeat("é", proto.MaxMessage))
	_, end, err := follow(t, j, [2]int64{0, 0})
	require.NoError(t, err)
	assert.Less(t, len(end.Verdict.Detail), 2<<10)
	assert.True(t, strings.HasPrefix(end.Verdict.Detail, "cancelled: éé"))
}
