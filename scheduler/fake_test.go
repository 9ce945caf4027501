package scheduler

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"resh/cluster"
)

// errLost is what a fake conn's Next returns once it is closed or cut.
var errLost = errors.New("fake: the job's stream is lost")

// wait bounds every wait of the tests.
const wait = 10 * time.Second

// fakeCluster is a Cluster whose executors the test drives: each has a
// room count and languages; the jobs run on it are fakeConns.
type fakeCluster struct {
	mu       sync.Mutex
	room     map[string]int      // executor → free slots
	langs    map[string][]string // executor → languages
	detached map[string]bool     // executors whose link is not attached
	unknown  map[int64]bool      // ResumeJob of these: ErrUnknownJob
	runs     []*fakeConn
	resumes  []cluster.JobResume
	drops    []cluster.JobDrop
	frees    int
	refuse   int // RunJob says ErrNoRoom this many more times, whatever Free says
	refused  int // how many times it did

	roomCh  chan struct{}
	changed chan struct{} // closed and replaced at every call
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{
		room: map[string]int{}, langs: map[string][]string{}, detached: map[string]bool{}, unknown: map[int64]bool{},
		roomCh: make(chan struct{}, 1), changed: make(chan struct{}),
	}
}

// addExecutor adds an executor with n free slots and these languages.
func (f *fakeCluster) addExecutor(name string, n int, langs ...string) {
	f.mu.Lock()
	f.room[name], f.langs[name] = n, langs
	f.mu.Unlock()
	f.kick()
}

// setRoom changes an executor's free slots.
func (f *fakeCluster) setRoom(name string, n int) {
	f.mu.Lock()
	f.room[name] = n
	f.mu.Unlock()
	f.kick()
}

func (f *fakeCluster) kick() {
	select {
	case f.roomCh <- struct{}{}:
	default:
	}
}

// changedLocked wakes the waiters.
func (f *fakeCluster) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor waits until cond (called under f.mu) holds.
func (f *fakeCluster) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		f.mu.Lock()
		ok := cond()
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// run waits for the n-th job run (from 1) and returns its conn.
func (f *fakeCluster) run(t *testing.T, n int) *fakeConn {
	t.Helper()
	var c *fakeConn
	f.waitFor(t, "a job run", func() bool {
		if len(f.runs) >= n {
			c = f.runs[n-1]
			return true
		}
		return false
	})
	return c
}

func (f *fakeCluster) RunJob(ctx context.Context, run cluster.JobRun, source, stdin []byte) (Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse > 0 {
		f.refuse--
		f.refused++
		f.changedLocked()
		return nil, ErrNoRoom
	}
	var names []string
	for n := range f.room {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if f.room[n] > 0 && !f.detached[n] && slices.Contains(f.langs[n], run.Lang) {
			f.room[n]--
			c := newFakeConn(f, n, run.ID, run.Lease)
			c.run, c.source, c.stdin = run, source, stdin
			f.runs = append(f.runs, c)
			f.changedLocked()
			return c, nil
		}
	}
	return nil, ErrNoRoom
}

func (f *fakeCluster) Room() <-chan struct{} { return f.roomCh }

func (f *fakeCluster) Free() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frees++
	defer f.changedLocked()
	var out []string
	for n, r := range f.room {
		if r > 0 && !f.detached[n] {
			for _, l := range f.langs[n] {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

func (f *fakeCluster) Languages() ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ls := range f.langs {
		for _, l := range ls {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out, len(f.langs) > 0
}

func (f *fakeCluster) ResumeJob(executor string, r cluster.JobResume) (Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resumes = append(f.resumes, r)
	f.changedLocked()
	if f.unknown[r.ID] {
		return nil, ErrUnknownJob
	}
	if _, ok := f.room[executor]; !ok || f.detached[executor] {
		return nil, errors.New("fake: executor not joined")
	}
	c := newFakeConn(f, executor, r.ID, r.Lease)
	c.resumed = true
	f.runs = append(f.runs, c)
	return c, nil
}

func (f *fakeCluster) DropJob(executor string, id, lease int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drops = append(f.drops, cluster.JobDrop{ID: id, Lease: lease})
	f.changedLocked()
}

func (f *fakeCluster) Attached(executor string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.room[executor]
	return ok && !f.detached[executor]
}

// fakeConn is one job on a fake executor: the test feeds its output and
// end, and sees its acks, cancels and release.
type fakeConn struct {
	f         *fakeCluster
	executor  string
	id, lease int64
	run       cluster.JobRun
	source    []byte
	stdin     []byte
	resumed   bool

	feed   chan item
	cut    chan struct{} // closed by Close or by the test (the link broke)
	cutOne sync.Once

	// Under f.mu:
	acks     []cluster.JobAck
	cancels  []string
	released bool
	closed   bool
	ended    bool
}

func newFakeConn(f *fakeCluster, executor string, id, lease int64) *fakeConn {
	return &fakeConn{f: f, executor: executor, id: id, lease: lease, feed: make(chan item, 64), cut: make(chan struct{})}
}

// out feeds output of stream at offset.
func (c *fakeConn) out(stream int, offset int64, data string) {
	c.feed <- item{out: &cluster.JobOutput{Stream: stream, Offset: offset, Data: []byte(data)}}
}

// end feeds the job's end.
func (c *fakeConn) end(e cluster.JobEnd) { c.feed <- item{end: &e} }

// lose breaks the conn as a lost link does.
func (c *fakeConn) lose() { c.cutOne.Do(func() { close(c.cut) }) }

func (c *fakeConn) Next() (*cluster.JobOutput, *cluster.JobEnd, error) {
	c.f.mu.Lock()
	ended := c.ended
	c.f.mu.Unlock()
	if ended {
		return nil, nil, io.EOF
	}
	select {
	case it := <-c.feed:
		if it.end != nil {
			c.f.mu.Lock()
			c.ended = true
			c.f.mu.Unlock()
		}
		return it.out, it.end, it.err
	case <-c.cut:
		return nil, nil, errLost
	}
}

func (c *fakeConn) Ack(stdout, stderr int64) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.acks = append(c.acks, cluster.JobAck{Stdout: stdout, Stderr: stderr})
	c.f.changedLocked()
	return nil
}

func (c *fakeConn) Cancel(reason string) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.cancels = append(c.cancels, reason)
	c.f.changedLocked()
	return nil
}

func (c *fakeConn) Release() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.released = true
	c.f.room[c.executor]++ // a task ended: Room
	c.f.changedLocked()
	c.f.kick()
	c.lose()
	return nil
}

func (c *fakeConn) Close() error {
	c.f.mu.Lock()
	c.closed = true
	c.f.changedLocked()
	c.f.mu.Unlock()
	c.lose()
	return nil
}

func (c *fakeConn) Executor() string { return c.executor }

// lastAck is the conn's last ack (zero before one).
func (c *fakeConn) lastAck() cluster.JobAck {
	if len(c.acks) == 0 {
		return cluster.JobAck{}
	}
	return c.acks[len(c.acks)-1]
}

// requireAck waits for an ack of these lengths.
func (c *fakeConn) requireAck(t *testing.T, stdout, stderr int64) {
	t.Helper()
	c.f.waitFor(t, "an ack", func() bool { a := c.lastAck(); return a.Stdout == stdout && a.Stderr == stderr })
}

var _ = require.New
