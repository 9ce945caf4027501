package scheduler

import (
	"context"
	"encoding/json"
	"path/filepath"
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

// A submitted job is stored (queued, source and stdin kept) before
// Submit returns, and its language checked against the executors'.
func TestSubmitStoresBeforeAnswering(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	// No executor known: the job waits for one.
	j, err := h.s.Submit(ctx, owner, proto.Job{Lang: "python", Name: "a.py", Args: []string{"x"}, Limits: proto.JobLimits{WallMS: 5000}}, []byte("print(1)"), []byte("in"))
	require.NoError(t, err)
	got, err := h.st.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Queued, got.State)
	assert.Equal(t, owner, got.Owner)
	assert.Equal(t, "print(1)", string(got.Source))
	assert.Equal(t, "in", string(got.Stdin))
	assert.Equal(t, []string{"x"}, got.Args)
	assert.Equal(t, DefaultRetries, got.MaxRetries)
	assert.JSONEq(t, `{"wall_ms":5000}`, string(got.Limits))

	h.fc.addExecutor("e1", 0, "c", "sh")
	_, err = h.s.Submit(ctx, owner, proto.Job{Lang: "python"}, nil, nil)
	require.EqualError(t, err, "reshd: no executor has the language python (the executors have: c, sh)")
	_, err = h.s.Submit(ctx, owner, proto.Job{Lang: "c"}, nil, make([]byte, proto.MaxJobStdin+1))
	require.ErrorIs(t, err, ErrTooLarge)
}

// A job runs when an executor has room: its output is stored in batches,
// each acknowledged, its end stored once, then released; the executor
// ran it with the stored fields.
func TestRunStoresOutputAndEnd(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("print(1)")
	h.fc.addExecutor("e1", 1, "python")
	c := h.fc.run(t, 1)
	assert.Equal(t, cluster.JobRun{ID: j.ID, Lease: 1, Lang: "python", Name: "a.py", Size: 8, NoStdin: true}, c.run)
	assert.Equal(t, "print(1)", string(c.source))
	h.waitJob(j.ID, "assigned", func(j store.Job) bool { return j.Executor == "e1" && !j.Started.IsZero() })

	c.out(cluster.JobStdout, 0, "hello ")
	c.out(cluster.JobStdout, 6, "world\n")
	c.out(cluster.JobStderr, 0, "warn\n")
	c.requireAck(t, 12, 5)
	c.end(okEnd("e1"))
	h.fc.waitFor(t, "the release", func() bool { return c.released })
	got := h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
	assert.Equal(t, int64(12), got.StdoutLen)
	assert.Equal(t, int64(5), got.StderrLen)
	var end cluster.JobEnd
	require.NoError(t, json.Unmarshal(got.Result, &end))
	assert.Equal(t, okEnd("e1"), end)

	sk := newSink()
	require.NoError(t, h.attach(owner, j.ID, 0, 0, sk)())
	assert.Equal(t, "hello world\n", string(sk.out[store.Stdout]))
	assert.Equal(t, "warn\n", string(sk.out[store.Stderr]))
	assert.Empty(t, sk.states, "no JobState for a job that has ended")
	assert.Equal(t, proto.VerdictOK, sk.verdict.Verdict)
	assert.Equal(t, proto.Exit{}, *sk.exit)
}

// Output is stored at most BatchDelay after it came, or as soon as
// BatchBytes of it wait: many small chunks make few acks.
func TestOutputBatches(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		h := newHarness(t, Config{BatchDelay: wait * 10, BatchBytes: 64 << 10})
		j := h.submit("x")
		h.fc.addExecutor("e1", 1, "python")
		c := h.fc.run(t, 1)
		chunk := strings.Repeat("a", cluster.MaxJobChunk)
		c.out(cluster.JobStdout, 0, chunk)
		c.out(cluster.JobStdout, cluster.MaxJobChunk, chunk)
		c.requireAck(t, 2*cluster.MaxJobChunk, 0) // 64 KiB waited: stored without the delay
		c.out(cluster.JobStdout, 2*cluster.MaxJobChunk, "tail")
		c.end(okEnd("e1"))
		got := h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
		assert.Equal(t, int64(2*cluster.MaxJobChunk+4), got.StdoutLen)
		h.fc.mu.Lock()
		defer h.fc.mu.Unlock()
		assert.Len(t, c.acks, 2, "one ack per stored batch")
	})
	t.Run("delay", func(t *testing.T) {
		h := newHarness(t, Config{})
		j := h.submit("x")
		h.fc.addExecutor("e1", 1, "python")
		c := h.fc.run(t, 1)
		for i := range 200 {
			c.out(cluster.JobStderr, int64(i), "x")
		}
		c.requireAck(t, 0, 200)
		h.fc.mu.Lock()
		n := len(c.acks)
		h.fc.mu.Unlock()
		assert.Less(t, n, 200, "chunks are stored in batches")
		c.end(okEnd("e1"))
		h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
	})
}

// Jobs are claimed only while an executor has room for their language:
// no more than the cluster can run now.
func TestClaimsOnlyWithRoom(t *testing.T) {
	h := newHarness(t, Config{})
	var ids []int64
	for range 3 {
		ids = append(ids, h.submit("x").ID)
	}
	h.fc.addExecutor("e1", 0, "python")
	h.fc.addExecutor("e2", 5, "c") // room, but not for python
	h.fc.setRoom("e1", 1)
	c := h.fc.run(t, 1)
	assert.Equal(t, ids[0], c.id, "the oldest first")
	// Wake the claimer again: it asks Free, which has no python now.
	h.fc.mu.Lock()
	frees := h.fc.frees
	h.fc.mu.Unlock()
	h.fc.kick()
	h.fc.waitFor(t, "another look at Free", func() bool { return h.fc.frees > frees })
	for _, id := range ids[1:] {
		j, err := h.st.Get(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, store.Queued, j.State, "job %d is not claimed without room", id)
	}
	// The end frees the slot: the next job runs.
	c.end(okEnd("e1"))
	c2 := h.fc.run(t, 2)
	assert.Equal(t, ids[1], c2.id)
	c2.end(okEnd("e1"))
	c3 := h.fc.run(t, 3)
	c3.end(okEnd("e1"))
	h.waitJob(ids[2], "finished", func(j store.Job) bool { return j.State == store.Finished })
}

// A claimed job that no executor has room for after all (a race) stays
// claimed and is placed on the next Room.
func TestPendingPlacedOnRoom(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.mu.Lock()
	h.fc.refuse = 1 // Free has python, but the executor fills up meanwhile
	h.fc.mu.Unlock()
	h.fc.addExecutor("e1", 1, "python")
	h.fc.waitFor(t, "a refused run", func() bool { return h.fc.refused == 1 })
	got := h.waitJob(j.ID, "claimed", func(j store.Job) bool { return j.State == store.Running })
	assert.Equal(t, 1, got.Attempts)
	h.fc.kick() // Room
	c := h.fc.run(t, 1)
	assert.Equal(t, got.Lease, c.lease, "the same claim, placed")
	c.end(okEnd("e1"))
	h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
}

// claimCountingStore counts the Claims made on a store.
type claimCountingStore struct {
	store.Store
	claims atomic.Int64
}

func (c *claimCountingStore) Claim(ctx context.Context, master string, langs []string, leaseFor time.Duration) (store.Job, error) {
	c.claims.Add(1)
	return c.Store.Claim(ctx, master, langs, leaseFor)
}

// A queued job in a language no executor has room for costs no Claim (a
// write) at each change the store notices: only the jobs that can be
// placed are claimed.
func TestNoClaimWithoutRoomForTheLanguage(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cs := &claimCountingStore{Store: st}
	h := startOn(t, cs, newFakeCluster(), Config{})
	h.fc.addExecutor("e1", 1, "python")
	h.fc.addExecutor("e2", 0, "c")
	waiting, err := h.s.Submit(context.Background(), owner, proto.Job{Lang: "c", Name: "a.c"}, []byte("x"), nil)
	require.NoError(t, err)
	j := h.submit("x")
	c := h.placed(1)
	require.Equal(t, j.ID, c.id)
	for i := range 5 { // each a change the claimer is told of
		c.out(cluster.JobStdout, int64(i), "x")
		h.waitJob(j.ID, "output stored", func(j store.Job) bool { return j.StdoutLen == int64(i+1) })
	}
	c.end(okEnd("e1"))
	h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
	assert.Equal(t, int64(1), cs.claims.Load(), "Claims made")
	got, err := h.st.Get(context.Background(), waiting.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Queued, got.State)
}
