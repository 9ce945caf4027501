package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conformance is the suite every backend passes: what a user of the
// store relies on, whatever the database.
var conformance = []struct {
	name string
	test func(t *testing.T, e *env)
}{
	{"SubmitGet", testSubmitGet},
	{"Lifecycle", testLifecycle},
	{"ClaimOrder", testClaimOrder},
	{"StaleLease", testStaleLease},
	{"Output", testOutput},
	{"OutputLimit", testOutputLimit},
	{"Cancel", testCancel},
	{"Fail", testFail},
	{"Expire", testExpire},
	{"ConcurrentClaim", testConcurrentClaim},
	{"ConcurrentExpire", testConcurrentExpire},
	{"ConcurrentAppend", testConcurrentAppend},
	{"Purge", testPurge},
	{"List", testList},
	{"Count", testCount},
	{"Reopen", testReopen},
	{"Migrations", testMigrations},
	{"Watch", testWatch},
	{"WatchQueued", testWatchQueued},
	{"BadInput", testBadInput},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.test(t, newEnv(t, b))
				})
			}
		})
	}
}

var ctx = context.Background()

// Count has every state, 0 for none, and follows the jobs through their
// lives.
func testCount(t *testing.T, e *env) {
	s := e.open()
	want := map[State]int{Queued: 0, Running: 0, Finished: 0, Cancelled: 0, Failed: 0}
	got, err := s.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got, "an empty store")

	jobs := submit(t, s, 6, "alice")
	var claimed []Job
	for range 4 {
		c, err := s.Claim(ctx, "m", nil, time.Minute)
		require.NoError(t, err)
		claimed = append(claimed, c)
	}
	_, err = s.Finish(ctx, claimed[0].ID, claimed[0].Lease, 0, nil)
	require.NoError(t, err)
	_, err = s.Fail(ctx, claimed[1].ID, claimed[1].Lease, "SANDBOX_ERROR")
	require.NoError(t, err)
	_, err = s.Cancel(ctx, jobs[5].ID, "", "no")
	require.NoError(t, err)
	want = map[State]int{Queued: 1, Running: 2, Finished: 1, Cancelled: 1, Failed: 1}
	got, err = s.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	e.clock.Add(time.Hour)
	_, err = s.Purge(ctx, e.clock.Now())
	require.NoError(t, err)
	want = map[State]int{Queued: 1, Running: 2, Finished: 0, Cancelled: 0, Failed: 0}
	got, err = s.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got, "after Purge")
}

// Every given field comes back as given; the store's fields start as
// documented.
func testSubmitGet(t *testing.T, e *env) {
	s := e.open()
	j := hello("alice")
	j.Stdin = []byte("input\n")
	j.ID, j.State, j.Attempts, j.Lease = 99, Finished, 7, 7 // not the caller's to set
	got, err := s.Submit(ctx, j)
	require.NoError(t, err)
	assert.Positive(t, got.ID)
	assert.NotEqual(t, int64(99), got.ID)
	assert.Equal(t, Queued, got.State)
	assert.Zero(t, got.Attempts)
	assert.Zero(t, got.Lease)
	assert.Equal(t, DefaultMaxRetries, got.MaxRetries)
	assert.True(t, got.Submitted.Equal(e.clock.Now()), "Submitted %v", got.Submitted)
	read, err := s.Get(ctx, got.ID)
	require.NoError(t, err)
	assert.Equal(t, got, read)
	assert.Equal(t, []string{"a", "b c"}, read.Args)
	assert.Equal(t, j.Source, read.Source)
	assert.Equal(t, j.Stdin, read.Stdin)
	assert.JSONEq(t, `{"wall":"3m0s"}`, string(read.Limits))

	// No input is not an empty input.
	j = hello("alice")
	j.MaxRetries = NoRetries
	none, err := s.Submit(ctx, j)
	require.NoError(t, err)
	j.Stdin, j.MaxRetries, j.Args, j.Limits, j.Source = []byte{}, 3, nil, nil, nil
	empty, err := s.Submit(ctx, j)
	require.NoError(t, err)
	assert.Greater(t, empty.ID, none.ID)
	none, err = s.Get(ctx, none.ID)
	require.NoError(t, err)
	empty, err = s.Get(ctx, empty.ID)
	require.NoError(t, err)
	assert.Nil(t, none.Stdin)
	assert.NotNil(t, empty.Stdin)
	assert.Empty(t, empty.Stdin)
	assert.Zero(t, none.MaxRetries)
	assert.Equal(t, 3, empty.MaxRetries)
	assert.Nil(t, empty.Args)
	assert.Nil(t, empty.Limits)
	assert.Equal(t, []byte{}, empty.Source)

	_, err = s.Get(ctx, empty.ID+1)
	assert.ErrorIs(t, err, ErrNotFound)
}

// A job's whole life: claimed, assigned, renewed, output, finished once.
func testLifecycle(t *testing.T, e *env) {
	s := e.open()
	j := submit(t, s, 1, "alice")[0]
	c, err := s.Claim(ctx, "m1", nil, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, j.ID, c.ID)
	assert.Equal(t, Running, c.State)
	assert.Equal(t, "m1", c.Master)
	assert.Equal(t, 1, c.Attempts)
	assert.Positive(t, c.Lease)
	assert.True(t, c.LeaseUntil.Equal(e.clock.Now().Add(time.Minute)))
	assert.Equal(t, j.Source, c.Source, "a claim returns the whole job")

	e.clock.Add(time.Second)
	a, err := s.Assign(ctx, c.ID, c.Lease, "exec-1")
	require.NoError(t, err)
	assert.Equal(t, "exec-1", a.Executor)
	assert.True(t, a.Started.Equal(e.clock.Now()))

	until := e.clock.Now().Add(5 * time.Minute)
	require.NoError(t, s.Renew(ctx, c.ID, c.Lease, until))
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("hello\n"), 0)
	require.NoError(t, err)
	got, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	assert.True(t, got.LeaseUntil.Equal(until))
	assert.Equal(t, int64(6), got.StdoutLen)

	e.clock.Add(time.Second)
	f, err := s.Finish(ctx, c.ID, c.Lease, 3, []byte(`{"verdict":"OK"}`))
	require.NoError(t, err)
	assert.Equal(t, Finished, f.State)
	assert.Equal(t, 3, f.ExitCode)
	assert.JSONEq(t, `{"verdict":"OK"}`, string(f.Result))
	assert.True(t, f.Ended.Equal(e.clock.Now()))
	assert.True(t, f.LeaseUntil.IsZero())

	// Exactly once: the same lease again gets the stored job back.
	again, err := s.Finish(ctx, c.ID, c.Lease, 4, []byte(`{"verdict":"other"}`))
	assert.ErrorIs(t, err, ErrAlreadyDone)
	assert.Equal(t, f, again)
	// Nothing else is allowed any more.
	assert.ErrorIs(t, s.Renew(ctx, c.ID, c.Lease, until), ErrState)
	_, err = s.Assign(ctx, c.ID, c.Lease, "exec-2")
	assert.ErrorIs(t, err, ErrState)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 6, []byte("more"), 0)
	assert.ErrorIs(t, err, ErrState)
	_, err = s.Fail(ctx, c.ID, c.Lease, "late")
	assert.ErrorIs(t, err, ErrState)
	got, err = s.Get(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, f, got)
}

// Claims take the oldest queued job of the languages asked for.
func testClaimOrder(t *testing.T, e *env) {
	s := e.open()
	var ids []int64
	for _, lang := range []string{"python", "c", "python", "java"} {
		j := hello("alice")
		j.Lang = lang
		j, err := s.Submit(ctx, j)
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	c, err := s.Claim(ctx, "m", []string{"c", "java"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[1], c.ID)
	c, err = s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[0], c.ID)
	_, err = s.Claim(ctx, "m", []string{"c", "sh"}, time.Minute)
	assert.ErrorIs(t, err, ErrNoJob)
	c, err = s.Claim(ctx, "m", []string{"java", "python"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[2], c.ID)
	c, err = s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[3], c.ID)
	_, err = s.Claim(ctx, "m", nil, time.Minute)
	assert.ErrorIs(t, err, ErrNoJob)
}

// Every lease-fenced call with another lease is refused and changes
// nothing.
func testStaleLease(t *testing.T, e *env) {
	s := e.open()
	submit(t, s, 1, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("ok"), 0)
	require.NoError(t, err)
	before, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	for _, lease := range []int64{c.Lease - 1, c.Lease + 1, 0} {
		_, err = s.Assign(ctx, c.ID, lease, "x")
		assert.ErrorIs(t, err, ErrStaleLease)
		assert.ErrorIs(t, s.Renew(ctx, c.ID, lease, e.clock.Now().Add(time.Hour)), ErrStaleLease)
		_, err = s.AppendOutput(ctx, c.ID, lease, Stdout, 2, []byte("bad"), 0)
		assert.ErrorIs(t, err, ErrStaleLease)
		_, err = s.Finish(ctx, c.ID, lease, 0, nil)
		assert.ErrorIs(t, err, ErrStaleLease)
		_, err = s.Fail(ctx, c.ID, lease, "bad")
		assert.ErrorIs(t, err, ErrStaleLease)
	}
	after, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	_, err = s.Assign(ctx, c.ID+1, c.Lease, "x")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Finish(ctx, c.ID+1, c.Lease, 0, nil)
	assert.ErrorIs(t, err, ErrNotFound)
}

// Output is kept by offset: resends are harmless, overlaps add only
// their new tail, gaps are refused, and any range reads back.
func testOutput(t *testing.T, e *env) {
	s := e.open()
	submit(t, s, 1, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	appendOut := func(st Stream, off int64, data string) (int, error) {
		return s.AppendOutput(ctx, c.ID, c.Lease, st, off, []byte(data), 0)
	}
	read := func(st Stream, from int64, n int) (string, int64) {
		t.Helper()
		b, l, lease, err := s.ReadOutput(ctx, c.ID, st, from, n)
		require.NoError(t, err)
		assert.Equal(t, c.Lease, lease, "the attempt read")
		return string(b), l
	}
	kept, err := appendOut(Stdout, 0, "hello")
	require.NoError(t, err)
	assert.Equal(t, 5, kept)
	kept, err = appendOut(Stdout, 0, "hello") // a resend
	require.NoError(t, err)
	assert.Equal(t, 5, kept)
	kept, err = appendOut(Stdout, 3, "lo world") // overlaps
	require.NoError(t, err)
	assert.Equal(t, 8, kept)
	_, err = appendOut(Stdout, 12, "!") // one byte missing
	assert.ErrorIs(t, err, ErrGap)
	kept, err = appendOut(Stdout, 11, "")
	require.NoError(t, err)
	assert.Zero(t, kept)
	_, err = appendOut(Stderr, 0, "oops")
	require.NoError(t, err)

	data, length := read(Stdout, 0, 0)
	assert.Equal(t, "hello world", data)
	assert.Equal(t, int64(11), length)
	data, _ = read(Stdout, 4, 3)
	assert.Equal(t, "o w", data)
	data, length = read(Stdout, 11, 10)
	assert.Empty(t, data)
	assert.Equal(t, int64(11), length)
	data, _ = read(Stdout, 50, 10)
	assert.Empty(t, data)
	data, length = read(Stderr, 0, 100)
	assert.Equal(t, "oops", data)
	assert.Equal(t, int64(4), length)

	// Long appends span several chunks; reads cross their bounds.
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*chunkSize/16+100)
	kept, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 11, big, 0)
	require.NoError(t, err)
	assert.Equal(t, len(big), kept)
	want := append([]byte("hello world"), big...)
	for _, r := range [][2]int{{0, len(want)}, {chunkSize - 5, 10}, {chunkSize + 11, chunkSize}, {7, 2*chunkSize + 3}, {len(want) - 1, 10}} {
		got, length, _, err := s.ReadOutput(ctx, c.ID, Stdout, int64(r[0]), r[1])
		require.NoError(t, err)
		assert.Equal(t, int64(len(want)), length)
		end := min(r[0]+r[1], len(want))
		assert.True(t, bytes.Equal(want[r[0]:end], got), "read %d+%d", r[0], r[1])
	}
	// A resend overlapping the chunks adds only its tail.
	kept, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, int64(len(want)-3), []byte("defXYZ"), 0)
	require.NoError(t, err)
	assert.Equal(t, 6, kept)
	tail, _ := read(Stdout, int64(len(want)-3), 0)
	assert.Equal(t, "defXYZ", tail)

	// Output stays readable once the job ended.
	_, err = s.Finish(ctx, c.ID, c.Lease, 0, nil)
	require.NoError(t, err)
	data, _ = read(Stderr, 1, 0)
	assert.Equal(t, "ops", data)
	_, _, _, err = s.ReadOutput(ctx, c.ID+1, Stdout, 0, 0)
	assert.ErrorIs(t, err, ErrNotFound)
}

// The limit caps each stream; what is beyond it is dropped and said so.
func testOutputLimit(t *testing.T, e *env) {
	s := e.open()
	submit(t, s, 1, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	kept, err := s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("12345"), 8)
	require.NoError(t, err)
	assert.Equal(t, 5, kept)
	kept, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 5, []byte("67890"), 8)
	require.NoError(t, err)
	assert.Equal(t, 3, kept, "only 8 bytes in all")
	kept, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 8, []byte("90"), 8)
	require.NoError(t, err)
	assert.Zero(t, kept)
	kept, err = s.AppendOutput(ctx, c.ID, c.Lease, Stderr, 0, []byte("err"), 8)
	require.NoError(t, err)
	assert.Equal(t, 3, kept, "each stream has its own limit")
	data, length, _, err := s.ReadOutput(ctx, c.ID, Stdout, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, "12345678", string(data))
	assert.Equal(t, int64(8), length)
}

// Cancel ends queued and running jobs, returns them as they were, and
// keeps to the owner's jobs when given one.
func testCancel(t *testing.T, e *env) {
	s := e.open()
	jobs := submit(t, s, 3, "alice")
	_, err := s.Cancel(ctx, jobs[0].ID, "bob", "no")
	assert.ErrorIs(t, err, ErrNotFound, "bob cannot see alice's job")

	before, err := s.Cancel(ctx, jobs[0].ID, "alice", "changed my mind")
	require.NoError(t, err)
	assert.Equal(t, Queued, before.State)
	got, err := s.Get(ctx, jobs[0].ID)
	require.NoError(t, err)
	assert.Equal(t, Cancelled, got.State)
	assert.Equal(t, "changed my mind", got.Reason)
	assert.True(t, got.Ended.Equal(e.clock.Now()))

	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, jobs[1].ID, c.ID, "a cancelled job is never claimed")
	_, err = s.Assign(ctx, c.ID, c.Lease, "exec-1")
	require.NoError(t, err)
	before, err = s.Cancel(ctx, c.ID, "", "admin")
	require.NoError(t, err)
	assert.Equal(t, Running, before.State)
	assert.Equal(t, "exec-1", before.Executor, "the caller learns where to stop it")
	// The executor's late calls change nothing.
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("x"), 0)
	assert.ErrorIs(t, err, ErrState)
	_, err = s.Finish(ctx, c.ID, c.Lease, 0, nil)
	assert.ErrorIs(t, err, ErrState)
	got, err = s.Get(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, Cancelled, got.State)

	_, err = s.Cancel(ctx, c.ID, "", "again")
	assert.ErrorIs(t, err, ErrState)
	_, err = s.Cancel(ctx, jobs[2].ID+1, "", "none")
	assert.ErrorIs(t, err, ErrNotFound)
}

// Fail ends a running job, or a queued one with its current lease.
func testFail(t *testing.T, e *env) {
	s := e.open()
	jobs := submit(t, s, 2, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	f, err := s.Fail(ctx, c.ID, c.Lease, "SANDBOX_ERROR")
	require.NoError(t, err)
	assert.Equal(t, Failed, f.State)
	assert.Equal(t, "SANDBOX_ERROR", f.Reason)
	assert.True(t, f.Ended.Equal(e.clock.Now()))

	q, err := s.Fail(ctx, jobs[1].ID, jobs[1].Lease, "NO_EXECUTOR")
	require.NoError(t, err)
	assert.Equal(t, Failed, q.State)
	_, err = s.Claim(ctx, "m", nil, time.Minute)
	assert.ErrorIs(t, err, ErrNoJob)
}

// Expire takes back lost attempts: queued again with a new lease and no
// output while retries remain, then failed with EXECUTOR_LOST.
func testExpire(t *testing.T, e *env) {
	s := e.open()
	j := submit(t, s, 1, "alice")[0]
	noRetry := hello("alice")
	noRetry.MaxRetries = NoRetries
	noRetry, err := s.Submit(ctx, noRetry)
	require.NoError(t, err)
	fresh := submit(t, s, 1, "alice")[0]

	c1, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	require.Equal(t, j.ID, c1.ID)
	c2, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	require.Equal(t, noRetry.ID, c2.ID)
	_, err = s.AppendOutput(ctx, c1.ID, c1.Lease, Stdout, 0, []byte("first attempt"), 0)
	require.NoError(t, err)
	e.clock.Add(30 * time.Second)
	c3, err := s.Claim(ctx, "m", nil, time.Minute) // its lease runs 30 s longer
	require.NoError(t, err)
	require.Equal(t, fresh.ID, c3.ID)

	// Nothing is late yet.
	changed, err := s.Expire(ctx, e.clock.Now())
	require.NoError(t, err)
	assert.Empty(t, changed)

	e.clock.Add(45 * time.Second)
	changed, err = s.Expire(ctx, e.clock.Now())
	require.NoError(t, err)
	require.Len(t, changed, 2)
	sort.Slice(changed, func(a, b int) bool { return changed[a].ID < changed[b].ID })
	re, lost := changed[0], changed[1]
	assert.Equal(t, Queued, re.State)
	assert.Greater(t, re.Lease, c1.Lease)
	assert.Equal(t, 1, re.Attempts)
	assert.Zero(t, re.StdoutLen)
	assert.Empty(t, re.Master)
	assert.True(t, re.LeaseUntil.IsZero())
	assert.Equal(t, Failed, lost.State)
	assert.Equal(t, ReasonExecutorLost, lost.Reason)
	assert.True(t, lost.Ended.Equal(e.clock.Now()))
	got, err := s.Get(ctx, c3.ID)
	require.NoError(t, err)
	assert.Equal(t, Running, got.State, "a job whose lease runs is left alone")

	// The lost attempt's output is gone and its executor is stale.
	data, length, lease, err := s.ReadOutput(ctx, re.ID, Stdout, 0, 0)
	require.NoError(t, err)
	assert.Empty(t, data)
	assert.Zero(t, length)
	assert.Equal(t, re.Lease, lease, "the lease the job is back in the queue with, not the lost attempt's")
	_, err = s.Finish(ctx, c1.ID, c1.Lease, 0, nil)
	assert.ErrorIs(t, err, ErrStaleLease)
	_, err = s.AppendOutput(ctx, c1.ID, c1.Lease, Stdout, 0, []byte("late"), 0)
	assert.ErrorIs(t, err, ErrStaleLease)
	_, err = s.Finish(ctx, c2.ID, c2.Lease, 0, nil)
	assert.ErrorIs(t, err, ErrStaleLease)

	// The retry runs once more, then fails for good.
	r, err := s.Claim(ctx, "m2", nil, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, re.ID, r.ID)
	assert.Equal(t, 2, r.Attempts)
	require.NoError(t, s.Renew(ctx, c3.ID, c3.Lease, e.clock.Now().Add(time.Hour)))
	e.clock.Add(2 * time.Minute)
	changed, err = s.Expire(ctx, e.clock.Now())
	require.NoError(t, err)
	require.Len(t, changed, 1, "the renewed job is not late")
	assert.Equal(t, r.ID, changed[0].ID)
	assert.Equal(t, Failed, changed[0].State)
	assert.Equal(t, ReasonExecutorLost, changed[0].Reason)
	assert.Equal(t, 2, changed[0].Attempts)
}

// Two masters (two Store values) claiming at once, several goroutines
// each, claim every job exactly once.
func testConcurrentClaim(t *testing.T, e *env) {
	const n = 200
	s1, s2 := e.open(), e.open()
	submit(t, s1, n/2, "alice")
	submit(t, s2, n/2, "bob")
	var (
		mu      sync.Mutex
		claimed = map[int64]string{}
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
	)
	for i := range 8 {
		s, master := s1, "m1"
		if i%2 == 1 {
			s, master = s2, "m2"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := s.Claim(ctx, master, nil, time.Minute)
				if errors.Is(err, ErrNoJob) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := claimed[j.ID]; dup {
					errs <- fmt.Errorf("job %d claimed by %s and %s", j.ID, prev, master)
				}
				claimed[j.ID] = master
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Len(t, claimed, n)
	running, err := s1.List(ctx, Filter{States: []State{Running}, Limit: MaxListLimit})
	require.NoError(t, err)
	assert.Len(t, running, n)
	for _, j := range running {
		assert.Equal(t, 1, j.Attempts)
		assert.Equal(t, claimed[j.ID], j.Master)
	}
}

// Two masters expiring at once handle each lost job once.
func testConcurrentExpire(t *testing.T, e *env) {
	const n = 100
	s1, s2 := e.open(), e.open()
	submit(t, s1, n, "alice")
	for range n {
		_, err := s1.Claim(ctx, "m1", nil, time.Minute)
		require.NoError(t, err)
	}
	e.clock.Add(2 * time.Minute)
	var (
		wg     sync.WaitGroup
		result [2][]Job
		errs   [2]error
	)
	for i, s := range []Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			result[i], errs[i] = s.Expire(ctx, e.clock.Now())
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	seen := map[int64]bool{}
	for _, jobs := range result {
		for _, j := range jobs {
			assert.False(t, seen[j.ID], "job %d expired twice", j.ID)
			seen[j.ID] = true
			assert.Equal(t, Queued, j.State)
		}
	}
	assert.Len(t, seen, n)
	queued, err := s1.List(ctx, Filter{States: []State{Queued}, Limit: MaxListLimit})
	require.NoError(t, err)
	assert.Len(t, queued, n)
	for _, j := range queued {
		assert.Equal(t, int64(2), j.Lease, "the lease moved on once")
	}
}

// An executor resending overlapping output from two goroutines (a
// reconnect) still stores each byte once, in order.
func testConcurrentAppend(t *testing.T, e *env) {
	s := e.open()
	submit(t, s, 1, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	want := bytes.Repeat([]byte("abcdefghij"), 100)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := 0; off < len(want); {
				end := min(off+64, len(want))
				_, err := s.AppendOutput(ctx, c.ID, c.Lease, Stdout, int64(off), want[off:end], 0)
				if errors.Is(err, ErrGap) { // another sender is behind: resend from where it is
					_, l, _, rerr := s.ReadOutput(ctx, c.ID, Stdout, 0, 1)
					if rerr != nil {
						t.Error(rerr)
						return
					}
					off = int(l)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				off = end
			}
		}()
	}
	wg.Wait()
	got, length, _, err := s.ReadOutput(ctx, c.ID, Stdout, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(len(want)), length)
	assert.Equal(t, string(want), string(got))
}

// Purge removes ended jobs (and their output) that ended before the
// given time, and nothing else.
func testPurge(t *testing.T, e *env) {
	s := e.open()
	jobs := submit(t, s, 5, "alice")
	// 0: finished long ago, with output; 1: cancelled long ago;
	// 2: failed recently; 3: running; 4: queued.
	c, err := s.Claim(ctx, "m", nil, time.Hour)
	require.NoError(t, err)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stderr, 0, []byte("output"), 0)
	require.NoError(t, err)
	_, err = s.Finish(ctx, c.ID, c.Lease, 0, nil)
	require.NoError(t, err)
	_, err = s.Cancel(ctx, jobs[1].ID, "", "")
	require.NoError(t, err)
	e.clock.Add(48 * time.Hour)
	cutoff := e.clock.Now()
	e.clock.Add(time.Second)
	_, err = s.Fail(ctx, jobs[2].ID, 0, "x")
	require.NoError(t, err)
	_, err = s.Claim(ctx, "m", nil, time.Hour)
	require.NoError(t, err)

	n, err := s.Purge(ctx, cutoff)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for i, j := range jobs {
		_, err := s.Get(ctx, j.ID)
		if i < 2 {
			assert.ErrorIs(t, err, ErrNotFound, "job %d", i)
		} else {
			assert.NoError(t, err, "job %d", i)
		}
	}
	_, _, _, err = s.ReadOutput(ctx, jobs[0].ID, Stderr, 0, 0)
	assert.ErrorIs(t, err, ErrNotFound)
	n, err = s.Purge(ctx, cutoff)
	require.NoError(t, err)
	assert.Zero(t, n)
	// Ids are never reused.
	next := submit(t, s, 1, "alice")[0]
	assert.Greater(t, next.ID, jobs[4].ID)
}

// List pages newest first, by owner and state, without the programs.
func testList(t *testing.T, e *env) {
	s := e.open()
	var alice, all []int64
	for i := range 25 {
		owner := "bob"
		if i%3 == 0 {
			owner = "alice"
		}
		j := submit(t, s, 1, owner)[0]
		if owner == "alice" {
			alice = append([]int64{j.ID}, alice...)
		}
		all = append([]int64{j.ID}, all...)
	}
	ids := func(jobs []Job) []int64 {
		var out []int64
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return out
	}
	var paged []int64
	before := int64(0)
	for {
		page, err := s.List(ctx, Filter{Limit: 10, Before: before})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 10)
		paged = append(paged, ids(page)...)
		before = page[len(page)-1].ID
		for _, j := range page {
			assert.Nil(t, j.Source)
			assert.Equal(t, "hello.py", j.Name)
		}
	}
	assert.Equal(t, all, paged)

	mine, err := s.List(ctx, Filter{Owner: "alice"})
	require.NoError(t, err)
	assert.Equal(t, alice, ids(mine))

	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	running, err := s.List(ctx, Filter{States: []State{Running, Finished}})
	require.NoError(t, err)
	assert.Equal(t, []int64{c.ID}, ids(running))
	none, err := s.List(ctx, Filter{Owner: "carol"})
	require.NoError(t, err)
	assert.Empty(t, none)

	java, err := s.List(ctx, Filter{Langs: []string{"java", "c"}})
	require.NoError(t, err)
	assert.Empty(t, java)
	python, err := s.List(ctx, Filter{Langs: []string{"java", c.Lang}, Limit: 5})
	require.NoError(t, err)
	assert.Equal(t, all[:5], ids(python))

	_, err = s.Assign(ctx, c.ID, c.Lease, "exec-1")
	require.NoError(t, err)
	for _, tc := range []struct {
		f    Filter
		want []int64
	}{
		{Filter{Executor: "exec-1"}, []int64{c.ID}},
		{Filter{Executor: "exec-2"}, nil},
		{Filter{Master: "m", States: []State{Running}}, []int64{c.ID}},
		{Filter{Master: "other"}, nil},
		{Filter{Master: "m", Executor: "exec-1", Owner: c.Owner}, []int64{c.ID}},
	} {
		got, err := s.List(ctx, tc.f)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ids(got), "%+v", tc.f)
	}
}

// Everything is still there after closing and opening again; a closed
// Store refuses calls.
func testReopen(t *testing.T, e *env) {
	s, err := Open(ctx, e.url, &Options{Now: e.clock.Now})
	require.NoError(t, err)
	jobs := submit(t, s, 3, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("kept"), 0)
	require.NoError(t, err)
	_, err = s.Finish(ctx, c.ID, c.Lease, 1, []byte(`"done"`))
	require.NoError(t, err)
	c2, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	var before []Job
	for _, j := range jobs {
		got, err := s.Get(ctx, j.ID)
		require.NoError(t, err)
		before = append(before, got)
	}
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Close(), ErrClosed)
	_, err = s.Get(ctx, jobs[0].ID)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Submit(ctx, hello("alice"))
	assert.ErrorIs(t, err, ErrClosed)

	s = e.open()
	for i, j := range jobs {
		got, err := s.Get(ctx, j.ID)
		require.NoError(t, err)
		assert.Equal(t, before[i], got)
	}
	data, _, _, err := s.ReadOutput(ctx, c.ID, Stdout, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(data))
	// The running job's lease still holds after the restart.
	require.NoError(t, s.Renew(ctx, c2.ID, c2.Lease, e.clock.Now().Add(time.Hour)))
}

// Opening at once from several Store values migrates once; a newer
// schema is refused clearly.
func testMigrations(t *testing.T, e *env) {
	var wg sync.WaitGroup
	errs := make([]error, 4)
	stores := make([]Store, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, e.url, nil)
		}()
	}
	wg.Wait()
	for i := range stores {
		require.NoError(t, errs[i])
		require.NoError(t, stores[i].Close())
	}
	s := e.open()
	submit(t, s, 1, "alice")
	require.NoError(t, s.Close())
	ms, err := loadMigrations(e.b.name)
	require.NoError(t, err)
	assert.Equal(t, int64(len(ms)), e.b.count(t, e.url, "SELECT count(*) FROM schema_version"), "each migration once")
	assert.Equal(t, int64(1), e.b.count(t, e.url, "SELECT count(*) FROM jobs"))

	e.b.exec(t, e.url, "INSERT INTO schema_version (version, name, applied) VALUES (1000, '1000_future.sql', 0)")
	_, err = Open(ctx, e.url, nil)
	assert.ErrorIs(t, err, ErrSchemaNewer)
	assert.ErrorContains(t, err, "upgrade resh")
}

// Watchers learn of changes without polling: of one job, or of any.
func testWatch(t *testing.T, e *env) {
	s := e.open()
	any, stopAny := s.Watch(0)
	defer stopAny()
	j := submit(t, s, 1, "alice")[0]
	waitSignal(t, any, "a submission")
	one, stopOne := s.Watch(j.ID)
	defer stopOne()
	other := submit(t, s, 1, "alice")[0]
	waitSignal(t, any, "a second submission")
	// Where notices also come back through the database (LISTEN), the
	// submission's own may arrive late: a notice means "look again",
	// and a spurious one is allowed. Elsewhere there is none.
	if !e.b.shared {
		noSignal(t, one, "another job's change")
	}

	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	require.Equal(t, j.ID, c.ID)
	waitSignal(t, one, "the claim")
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("x"), 0)
	require.NoError(t, err)
	waitSignal(t, one, "output")
	_, err = s.AppendOutput(ctx, c.ID, c.Lease+1, Stdout, 1, []byte("y"), 0)
	require.ErrorIs(t, err, ErrStaleLease)
	if !e.b.shared {
		noSignal(t, one, "a refused append")
	}
	stopOne()
	stopOne() // twice is harmless

	if !e.b.shared {
		return
	}
	// Another master's changes reach this one's watchers.
	s2 := e.open()
	remote, stop := s2.Watch(other.ID)
	defer stop()
	_, err = s.Cancel(ctx, other.ID, "", "bye")
	require.NoError(t, err)
	waitSignal(t, remote, "another master's cancel")
}

// Watch(QueuedJobs) is told of the jobs that become queued (submitted, or
// back in the queue after a lost attempt), and of nothing else: what a
// claimer waits for. Where notices come back through the database, other
// masters' submissions and expiries reach it too.
func testWatchQueued(t *testing.T, e *env) {
	s := e.open()
	queued, stop := s.Watch(QueuedJobs)
	defer stop()
	j := submit(t, s, 1, "alice")[0]
	waitSignal(t, queued, "a submission")

	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	require.Equal(t, j.ID, c.ID)
	_, err = s.Assign(ctx, c.ID, c.Lease, "exec-1")
	require.NoError(t, err)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, 0, []byte("x"), 0)
	require.NoError(t, err)
	if !e.b.shared {
		// Elsewhere the submission's notice may come back late.
		noSignal(t, queued, "a claim, an assignment, output")
	}
	e.clock.Add(2 * time.Minute)
	back, err := s.Expire(ctx, e.clock.Now())
	require.NoError(t, err)
	require.Len(t, back, 1)
	require.Equal(t, Queued, back[0].State)
	waitSignal(t, queued, "a job back in the queue")

	if !e.b.shared {
		return
	}
	s2 := e.open()
	remote, stop2 := s2.Watch(QueuedJobs)
	defer stop2()
	submit(t, s, 1, "bob")
	waitSignal(t, remote, "another master's submission")
}

// Bad arguments are refused with ErrInvalid, never a panic.
func testBadInput(t *testing.T, e *env) {
	s := e.open()
	j := hello("alice")
	j.MaxRetries = -2
	_, err := s.Submit(ctx, j)
	assert.ErrorIs(t, err, ErrInvalid)
	j = hello("alice")
	j.Limits = []byte("{not json")
	_, err = s.Submit(ctx, j)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = s.Claim(ctx, "m", nil, 0)
	assert.ErrorIs(t, err, ErrInvalid)

	submit(t, s, 1, "alice")
	c, err := s.Claim(ctx, "m", nil, time.Minute)
	require.NoError(t, err)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stream(3), 0, []byte("x"), 0)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = s.AppendOutput(ctx, c.ID, c.Lease, Stdout, -1, []byte("x"), 0)
	assert.ErrorIs(t, err, ErrInvalid)
	_, _, _, err = s.ReadOutput(ctx, c.ID, Stdout, -1, 0)
	assert.ErrorIs(t, err, ErrInvalid)
	_, _, _, err = s.ReadOutput(ctx, c.ID, Stream(0), 0, 0)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = s.Finish(ctx, c.ID, c.Lease, 0, []byte("{"))
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = s.List(ctx, Filter{States: []State{"done"}})
	assert.ErrorIs(t, err, ErrInvalid)
	got, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, Running, got.State)
	assert.Zero(t, got.StdoutLen)

	// A cancelled context stops a call before it changes anything.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Submit(cctx, hello("alice"))
	assert.ErrorIs(t, err, context.Canceled)
}
