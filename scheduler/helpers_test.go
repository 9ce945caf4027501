package scheduler

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/proto"
	"resh/store"
)

const owner = "SHA256:alice"

// harness is a Scheduler on a SQLite store in a temporary directory and
// a fake cluster.
type harness struct {
	t     *testing.T
	st    store.Store
	fc    *fakeCluster
	s     *Scheduler
	stop  func()
	start time.Time
}

// newHarness starts a Scheduler (Run) with cfg's tuning; it is stopped at
// the test's end.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return startOn(t, st, newFakeCluster(), cfg)
}

// startOn starts a Scheduler on st and fc.
func startOn(t *testing.T, st store.Store, fc *fakeCluster, cfg Config) *harness {
	t.Helper()
	cfg.Store, cfg.Cluster = st, fc
	s, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &harness{t: t, st: st, fc: fc, s: s, stop: stop, start: time.Now()}
}

// submit submits a python job of owner with this source.
func (h *harness) submit(src string) store.Job {
	h.t.Helper()
	j, err := h.s.Submit(context.Background(), owner, proto.Job{Lang: "python", Name: "a.py"}, []byte(src), nil)
	require.NoError(h.t, err)
	return j
}

// waitJob waits (on the store's notices) until the job satisfies cond,
// and returns it.
func (h *harness) waitJob(id int64, what string, cond func(store.Job) bool) store.Job {
	h.t.Helper()
	changed, stop := h.st.Watch(id)
	defer stop()
	deadline := time.After(wait)
	for {
		j, err := h.st.Get(context.Background(), id)
		if (err == nil || errors.Is(err, store.ErrNotFound)) && cond(j) { // a purged job: the zero Job
			return j
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			h.t.Fatalf("get job %d: %v", id, err)
		}
		select {
		case <-changed:
		case <-deadline:
			h.t.Fatalf("timed out waiting for job %d to be %s (it is %+v, err %v)", id, what, j, err)
		}
	}
}

// placed waits for the n-th job run (from 1) to be recorded in the store
// (Assign), and returns its conn.
func (h *harness) placed(n int) *fakeConn {
	h.t.Helper()
	c := h.fc.run(h.t, n)
	h.waitJob(c.id, "placed on "+c.executor, func(j store.Job) bool { return j.Lease == c.lease && j.Executor == c.executor })
	return c
}

// okEnd is the end of a job that exited 0 on executor e.
func okEnd(e string) cluster.JobEnd {
	return cluster.JobEnd{Verdict: proto.Verdict{Verdict: proto.VerdictOK, Executor: e}, Exit: proto.Exit{}}
}

// sink records what Attach writes, and wakes its waiters.
type sink struct {
	mu      sync.Mutex
	states  []proto.JobState
	out     [3][]byte
	events  []string // "state:queued", "out:1:..." in order
	verdict *proto.Verdict
	exit    *proto.Exit
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *sink) State(st proto.JobState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, st)
	s.events = append(s.events, "state:"+st.State)
	s.wakeLocked()
	return nil
}

func (s *sink) Output(stream store.Stream, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out[stream] = append(s.out[stream], data...)
	s.events = append(s.events, "out:"+stream.String()+":"+string(data))
	s.wakeLocked()
	return nil
}

func (s *sink) End(v proto.Verdict, e proto.Exit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verdict, s.exit = &v, &e
	s.events = append(s.events, "end:"+v.Verdict)
	s.wakeLocked()
	return nil
}

// waitFor waits until cond (under s.mu) holds.
func (s *sink) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("timed out waiting for %s; the sink has %q", what, s.events)
		}
	}
}

// attach runs Attach in a goroutine; the returned function waits for its
// result.
func (h *harness) attach(who string, id, stdout, stderr int64, sk *sink) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Attach(ctx, who, id, stdout, stderr, sk) }()
	var once sync.Once
	var err error
	result := func() error {
		once.Do(func() {
			select {
			case err = <-done:
			case <-time.After(wait):
				cancel()
				err = <-done
				h.t.Errorf("Attach did not return")
			}
			cancel()
		})
		return err
	}
	h.t.Cleanup(func() { cancel(); _ = result() })
	return result
}
