package scheduler

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
	"resh/store"
)

// Every way a job ends is counted once, by its verdict, and told to
// OnEnd; a job that is queued again after a loss has not ended.
func TestEndedByVerdict(t *testing.T) {
	ctx := context.Background()
	ends := make(chan string, 16)
	h := newHarness(t, Config{Retries: NoRetries, OnEnd: func(v string) { ends <- v }})
	next := func(want string) {
		t.Helper()
		select {
		case v := <-ends:
			assert.Equal(t, want, v)
		case <-time.After(wait):
			t.Fatalf("no end told (want %s)", want)
		}
	}
	assert.Empty(t, h.s.Ended())

	// Cancelled while queued.
	q := h.submit("q")
	_, err := h.s.Cancel(ctx, owner, q.ID, "no")
	require.NoError(t, err)
	next(proto.VerdictCancelled)
	_, err = h.s.Cancel(ctx, owner, q.ID, "again")
	require.Error(t, err)

	// Finished on its executor.
	h.submit("ok")
	h.fc.addExecutor("e1", 1, "python")
	c := h.placed(1)
	c.end(okEnd("e1"))
	next(proto.VerdictOK)
	h.fc.waitFor(t, "the release", func() bool { return c.released })

	// Its executor lost, no retries.
	lost := h.submit("lost")
	h.placed(2)
	h.s.OnLost("e1")
	next(proto.VerdictExecutorLost)
	h.waitJob(lost.ID, "failed", func(j store.Job) bool { return j.State == store.Failed })

	assert.Equal(t, map[string]uint64{
		proto.VerdictCancelled:    1,
		proto.VerdictOK:           1,
		proto.VerdictExecutorLost: 1,
	}, h.s.Ended())
	select {
	case v := <-ends:
		t.Fatalf("an end told twice: %s", v)
	default:
	}
}

// The store's end once: a job failed by the master counts once, a second
// Finish or Fail of an ended job not at all.
func TestEndCounterCountsStoredEndsOnce(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	defer st.Close()
	var told []string
	c := newEndCounter(st, func(v string) { told = append(told, v) })
	for range 2 {
		_, err := c.Submit(ctx, store.Job{Owner: owner, Lang: "python", Source: []byte("x")})
		require.NoError(t, err)
	}
	a, err := c.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	_, err = c.Fail(ctx, a.ID, a.Lease, "SANDBOX_ERROR")
	require.NoError(t, err)
	_, err = c.Fail(ctx, a.ID, a.Lease, "again")
	require.Error(t, err)

	b, err := c.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	result := []byte(`{"verdict":{"verdict":"TIME_LIMIT"}}`)
	_, err = c.Finish(ctx, b.ID, b.Lease, 137, result)
	require.NoError(t, err)
	_, err = c.Finish(ctx, b.ID, b.Lease, 137, result)
	require.ErrorIs(t, err, store.ErrAlreadyDone)

	assert.Equal(t, []string{proto.VerdictSandboxError, "TIME_LIMIT"}, told)
	assert.Equal(t, map[string]uint64{proto.VerdictSandboxError: 1, "TIME_LIMIT": 1}, c.n)
}
