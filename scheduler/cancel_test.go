package scheduler

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/proto"
	"resh/store"
)

// Cancelling a queued job ends it at once; a running one is killed on its
// executor first (its output until then stored), then stored as
// cancelled, and released. An attached client gets CANCELLED, exit 119.
func TestCancel(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{})
	queued := h.submit("q")
	info, err := h.s.Cancel(ctx, owner, queued.ID, "not needed")
	require.NoError(t, err)
	assert.Equal(t, "cancelled", info.State)
	assert.Equal(t, "not needed", info.Reason)
	assert.Equal(t, proto.VerdictCancelled, info.Verdict)
	assert.Equal(t, &proto.Exit{Code: proto.ExitCancelled}, info.Exit)

	j := h.submit("r")
	h.fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	sk := newSink()
	result := h.attach(owner, j.ID, 0, 0, sk)
	c.out(cluster.JobStdout, 0, "before")
	sk.waitFor(t, "the output", func() bool { return len(sk.out[store.Stdout]) == 6 })

	cancelled := make(chan proto.JobInfo, 1)
	go func() {
		info, err := h.s.Cancel(ctx, owner, j.ID, "by hand")
		assert.NoError(t, err)
		cancelled <- info
	}()
	h.fc.waitFor(t, "the executor told to kill it", func() bool { return len(c.cancels) == 1 })
	assert.Equal(t, "by hand", c.cancels[0])
	got, err := h.st.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Running, got.State, "cancelled once killed")
	c.out(cluster.JobStdout, 6, "+last")
	c.end(cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictCancelled}, Exit: proto.Exit{Code: proto.ExitCancelled}})
	info = <-cancelled
	assert.Equal(t, "cancelled", info.State)
	h.fc.waitFor(t, "the release", func() bool { return c.released })
	require.NoError(t, result())
	assert.Equal(t, "before+last", string(sk.out[store.Stdout]))
	assert.Equal(t, proto.VerdictCancelled, sk.verdict.Verdict)
	assert.Equal(t, "cancelled: by hand", sk.verdict.Detail)
	assert.Equal(t, proto.Exit{Code: proto.ExitCancelled}, *sk.exit)
	got, err = h.st.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Cancelled, got.State)
	assert.Equal(t, "by hand", got.Reason)

	_, err = h.s.Cancel(ctx, owner, j.ID, "again")
	var ended *EndedError
	require.ErrorAs(t, err, &ended)
	assert.EqualError(t, err, "reshd: job 2 has ended (cancelled)")
}

// A running job cancelled in the store by someone else (another master
// sharing it) is killed on its executor; its late output and end are
// ignored, and it is released.
func TestCancelledElsewhere(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{})
	j := h.submit("x")
	h.fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	c.out(cluster.JobStdout, 0, "before")
	c.requireAck(t, 6, 0)
	_, err := h.st.Cancel(ctx, j.ID, "", "by another master")
	require.NoError(t, err)
	h.fc.waitFor(t, "the executor told to kill it", func() bool { return len(c.cancels) == 1 })
	assert.Equal(t, "by another master", c.cancels[0])
	c.out(cluster.JobStdout, 6, "after")
	c.end(cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictCancelled}, Exit: proto.Exit{Code: proto.ExitCancelled}})
	h.fc.waitFor(t, "the release", func() bool { return c.released })
	got, err := h.st.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Cancelled, got.State)
	assert.Equal(t, int64(6), got.StdoutLen, "nothing stored after the cancel")
}

// Another owner's job does not exist for every query; AnyOwner (the
// master's keys) sees and touches every job.
func TestOwners(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, Config{})
	j := h.submit("x")
	other, err := h.s.Submit(ctx, "SHA256:bob", proto.Job{Lang: "python"}, []byte("y"), nil)
	require.NoError(t, err)

	_, err = h.s.Get(ctx, "SHA256:bob", j.ID)
	require.ErrorIs(t, err, ErrNoJob)
	assert.EqualError(t, err, "reshd: no job 1")
	_, err = h.s.Cancel(ctx, "SHA256:bob", j.ID, "")
	require.ErrorIs(t, err, ErrNoJob)
	require.ErrorIs(t, h.s.Attach(ctx, "SHA256:bob", j.ID, 0, 0, newSink()), ErrNoJob)
	_, err = h.s.Get(ctx, owner, 99)
	assert.EqualError(t, err, "reshd: no job 99")

	list, err := h.s.List(ctx, owner, proto.JobRequest{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, j.ID, list[0].ID)
	assert.Equal(t, "queued", list[0].State)
	assert.NotEmpty(t, list[0].Submitted)

	all, err := h.s.List(ctx, AnyOwner, proto.JobRequest{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, other.ID, all[0].ID, "newest first")
	info, err := h.s.Get(ctx, AnyOwner, j.ID)
	require.NoError(t, err)
	assert.Equal(t, owner, info.Owner)
	_, err = h.s.Cancel(ctx, AnyOwner, other.ID, "admin")
	require.NoError(t, err)

	list, err = h.s.List(ctx, "SHA256:bob", proto.JobRequest{})
	require.NoError(t, err)
	assert.Empty(t, list, "ended jobs only with all")
	list, err = h.s.List(ctx, "SHA256:bob", proto.JobRequest{All: true})
	require.NoError(t, err)
	assert.Len(t, list, 1)
	list, err = h.s.List(ctx, AnyOwner, proto.JobRequest{State: "cancelled"})
	require.NoError(t, err)
	assert.Len(t, list, 1)
	_, err = h.s.List(ctx, owner, proto.JobRequest{State: "done"})
	require.ErrorIs(t, err, ErrBadRequest)
}
