package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/proto"
	"resh/store"
)

// A job taken back from its executor (its lease expired and given to a
// new attempt) is dropped there: its old conn's output and end are
// ignored, and only the new attempt's end is stored.
func TestStaleLeaseEndIgnored(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	old := h.placed(1)
	// As another master would: the lease runs out, Expire takes it back.
	require.NoError(t, h.st.Renew(ctx, j.ID, old.lease, time.Unix(0, 1)))
	_, err := h.st.Expire(ctx, time.Unix(0, 2))
	require.NoError(t, err)
	h.fc.waitFor(t, "the old attempt dropped", func() bool {
		return old.closed && len(h.fc.drops) == 1 && h.fc.drops[0] == cluster.JobDrop{ID: j.ID, Lease: old.lease}
	})
	// The job runs again (e1 had its slot back).
	h.fc.setRoom("e1", 1)
	c := h.placed(2)
	assert.Equal(t, old.lease+2, c.lease)
	c.out(cluster.JobStdout, 0, "new")
	c.end(okEnd("e1"))
	got := h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
	assert.Equal(t, int64(3), got.StdoutLen)
	// A late end under the old lease changes nothing.
	_, err = h.st.Finish(ctx, j.ID, old.lease, 1, []byte(`{}`))
	require.ErrorIs(t, err, store.ErrStaleLease)
	// The same end again under the current lease: stored once.
	_, err = h.st.Finish(ctx, j.ID, c.lease, 0, []byte(`{}`))
	require.ErrorIs(t, err, store.ErrAlreadyDone)
}

// Leases are renewed every ExecutorTimeout/3 while the executor is
// attached, and not while it is not.
func TestLeaseRenewal(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, Config{ExecutorTimeout: timeout})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	h.placed(1)
	first, err := h.st.Get(context.Background(), j.ID)
	require.NoError(t, err)
	renewed := h.waitJob(j.ID, "renewed", func(j store.Job) bool { return j.LeaseUntil.After(first.LeaseUntil) })
	assert.WithinDuration(t, time.Now().Add(3*timeout), renewed.LeaseUntil, 2*timeout)

	// Detached: its lease runs out and (after the grace) it is taken back.
	h.fc.mu.Lock()
	h.fc.detached["e1"] = true
	h.fc.mu.Unlock()
	got := h.waitJob(j.ID, "expired", func(j store.Job) bool { return j.State == store.Queued })
	assert.Equal(t, 1, got.Attempts)
}

// For ExecutorTimeout after its start a Scheduler expires nothing: the
// jobs of a restarted master wait for their executors to join again.
func TestNoExpireDuringGrace(t *testing.T) {
	const timeout = 400 * time.Millisecond
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/jobs.db", nil)
	require.NoError(t, err)
	defer st.Close()
	j, err := st.Submit(ctx, store.Job{Owner: owner, Lang: "python", Source: []byte("x")})
	require.NoError(t, err)
	// Claimed by the master before its restart; its lease ran out.
	_, err = st.Claim(ctx, "master", nil, time.Nanosecond)
	require.NoError(t, err)

	start := time.Now()
	h := startOn(t, st, newFakeCluster(), Config{ExecutorTimeout: timeout})
	h.waitJob(j.ID, "expired", func(j store.Job) bool { return j.State == store.Queued })
	assert.GreaterOrEqual(t, time.Since(start), timeout, "not expired during the grace")
}

// A restarted master re-attaches the jobs its executors hold when they
// join: renewed, resumed from the stored lengths, finished once; a job
// held under another lease is dropped; one not held any more is lost.
func TestOnJoinReattaches(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/jobs.db", nil)
	require.NoError(t, err)
	defer st.Close()
	fc := newFakeCluster()
	h := startOn(t, st, fc, Config{})
	j := h.submit("x")
	gone := h.submit("y")
	fc.addExecutor("e1", 2, "python")
	c := h.placed(1)
	c2 := h.placed(2)
	c.out(cluster.JobStdout, 0, "first ")
	c.requireAck(t, 6, 0)
	h.stop() // the master goes; e1 keeps the jobs
	fc.waitFor(t, "the conns closed", func() bool { return c.closed && c2.closed })

	h2 := startOn(t, st, fc, Config{})
	h2.s.OnJoin("e1", []cluster.HeldJob{{ID: j.ID, Lease: c.lease}, {ID: 77, Lease: 1}})
	r := h2.fc.run(t, 3)
	assert.True(t, r.resumed)
	fc.mu.Lock()
	assert.Equal(t, []cluster.JobResume{{ID: j.ID, Lease: c.lease, Stdout: 6}}, fc.resumes)
	assert.Contains(t, fc.drops, cluster.JobDrop{ID: 77, Lease: 1}, "a job the store does not have under that lease")
	fc.mu.Unlock()
	r.out(cluster.JobStdout, 0, "first ") // resent: stored once
	r.out(cluster.JobStdout, 6, "second")
	r.end(okEnd("e1"))
	fc.waitFor(t, "the release", func() bool { return r.released })
	sk := newSink()
	require.NoError(t, h2.attach(owner, j.ID, 0, 0, sk)())
	assert.Equal(t, "first second", string(sk.out[store.Stdout]))

	// The other job, not listed: this master placed it on e1 before it
	// restarted, and e1 no longer holds it: lost at once (back to the
	// queue, to run again), without waiting for its lease.
	h2.waitJob(gone.ID, "taken back", func(j store.Job) bool { return j.State == store.Queued || j.Attempts >= 2 })
}

// Another master's job on an executor of the same name is not this
// master's to take back when that name joins here.
func TestOnJoinLeavesOtherMastersJobs(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/jobs.db", nil)
	require.NoError(t, err)
	defer st.Close()
	fc := newFakeCluster()
	h := startOn(t, st, fc, Config{Name: "other"})
	j := h.submit("x")
	fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	h.stop()
	fc.waitFor(t, "the conn closed", func() bool { return c.closed })

	h2 := startOn(t, st, newFakeCluster(), Config{Name: "this"})
	h2.s.OnJoin("e1", nil)
	got, err := st.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Running, got.State, "another master's job is left to its lease")
	assert.Equal(t, 1, got.Attempts)
}

// A job the executor lists but no longer holds when resumed
// (ErrUnknownJob) is lost: expired at once.
func TestResumeUnknownJobIsLost(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	h.fc.mu.Lock()
	h.fc.unknown[j.ID] = true
	h.fc.room["e1"] = 0
	h.fc.mu.Unlock()
	c.lose() // the stream breaks; its resume is refused
	got := h.waitJob(j.ID, "queued again", func(j store.Job) bool { return j.State == store.Queued })
	assert.Equal(t, 1, got.Attempts)
	h.fc.setRoom("e1", 1)
	c2 := h.placed(2)
	c2.end(cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictOK}})
	h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
}

// A stream lost while the executor is still joined is resumed at once
// from the stored lengths.
func TestLostStreamResumed(t *testing.T) {
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	c.out(cluster.JobStderr, 0, "abc")
	c.requireAck(t, 0, 3)
	c.lose()
	r := h.fc.run(t, 2)
	require.True(t, r.resumed)
	h.fc.mu.Lock()
	assert.Equal(t, []cluster.JobResume{{ID: j.ID, Lease: c.lease, Stderr: 3}}, h.fc.resumes)
	h.fc.mu.Unlock()
	r.out(cluster.JobStderr, 3, "def")
	r.end(okEnd("e1"))
	got := h.waitJob(j.ID, "finished", func(j store.Job) bool { return j.State == store.Finished })
	assert.Equal(t, int64(6), got.StderrLen)
}

// Jobs ended before the retention are purged at the start.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/jobs.db", nil)
	require.NoError(t, err)
	defer st.Close()
	old, err := st.Submit(ctx, store.Job{Owner: owner, Lang: "python"})
	require.NoError(t, err)
	_, err = st.Cancel(ctx, old.ID, "", "old")
	require.NoError(t, err)
	kept, err := st.Submit(ctx, store.Job{Owner: owner, Lang: "python"})
	require.NoError(t, err)

	h := startOn(t, st, newFakeCluster(), Config{Retention: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	h.waitJob(old.ID, "purged", func(j store.Job) bool { return j.ID == 0 })
	_, err = h.s.Get(ctx, owner, old.ID)
	require.ErrorIs(t, err, ErrNoJob)
	_, err = h.s.Get(ctx, owner, kept.ID)
	require.NoError(t, err, "a queued job is never purged")
}
