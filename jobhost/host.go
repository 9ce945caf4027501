package jobhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"resh/cluster"
	"resh/job"
	"resh/lang"
	"resh/sandbox"
)

// Config says how a Host runs jobs.
type Config struct {
	// Languages are the languages jobs may be in; nil: lang.Builtin().
	Languages *lang.Set
	// Ceiling caps the limits a job asks for, as server.Config.JobCeiling.
	Ceiling sandbox.Limits
	// Unsafe runs jobs without the sandbox (reshd -unsafe-no-sandbox).
	Unsafe bool
	// Executor is this executor's name, in verdicts.
	Executor string
	// Pool gives each job a sandbox built ahead of it; nil: a sandbox is
	// built per job. The Host does not close it.
	Pool *sandbox.Pool
	// Logger receives one line per job started and ended; nil: discard.
	Logger *slog.Logger
	// HoldFor is how long an ended job that is not released is kept;
	// 0: DefaultHoldFor.
	HoldFor time.Duration
}

// DefaultHoldFor is how long a Host keeps an ended job that its master
// did not release (cluster/spec.md §8: an hour).
const DefaultHoldFor = time.Hour

// Causes of a job killed by the Host rather than by its program.
var (
	errShutdown = errors.New("reshd is shutting down")
	errDropped  = errors.New("the master dropped the job")
	errReleased = errors.New("the master released the job")
	errReplaced = errors.New("the job was given again under another lease")
	errCanceled = errors.New("cancelled")
)

// Host runs and holds the durable jobs of one executor. Its methods may
// be called from any goroutine.
type Host struct {
	cfg     Config
	log     *slog.Logger
	changed chan struct{} // a token when running changed

	mu      sync.Mutex
	jobs    map[int64]*Held // by id: running, or ended and not released
	running int             // jobs whose processes may live
	closed  bool
	wg      sync.WaitGroup // one per job running
}

// New returns a Host that runs jobs as cfg says.
func New(cfg Config) *Host {
	if cfg.Languages == nil {
		cfg.Languages = lang.Builtin()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HoldFor <= 0 {
		cfg.HoldFor = DefaultHoldFor
	}
	return &Host{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}, 1), jobs: map[int64]*Held{}}
}

// Run starts the job run with its source and stdin given whole (with
// run.NoStdin, or no stdin, the program reads EOF at once); the fields of
// run but Size and StdinSize are used. A language this host lacks (or
// whose tools are missing) is a *cluster.RefusedError with Reason
// cluster.RefuseLang, a closed Host one with cluster.RefuseLeaving. A job
// already held under the same id and lease is returned as it is
// (idempotent); one held under another lease is killed and forgotten, and
// the job started anew.
func (h *Host) Run(run cluster.JobRun, source, stdin []byte) (*Held, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, &cluster.RefusedError{Executor: h.cfg.Executor, Reason: cluster.RefuseLeaving, Message: "the executor is shutting down"}
	}
	if j := h.jobs[run.ID]; j != nil {
		if j.lease == run.Lease {
			return j, nil
		}
		h.forgetLocked(j, errReplaced)
	}
	l, ok := h.cfg.Languages.ByName(run.Lang)
	if !ok || !l.ToolsIn(sandbox.DefaultPath) {
		return nil, &cluster.RefusedError{
			Executor: h.cfg.Executor, Reason: cluster.RefuseLang,
			Message: fmt.Sprintf("reshd: no language %s here (have: %s)", run.Lang, strings.Join(h.cfg.Languages.NamesIn(sandbox.DefaultPath), ", ")),
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	j := &Held{h: h, id: run.ID, lease: run.Lease, cancel: cancel, more: make(chan struct{})}
	spec := job.Spec{
		Language: l,
		Source:   source,
		Args:     run.Args,
		Limits:   run.Limits,
		Ceiling:  h.cfg.Ceiling,
		Stdout:   &streamWriter{j: j, i: 0},
		Stderr:   &streamWriter{j: j, i: 1},
		Unsafe:   h.cfg.Unsafe,
		Executor: h.cfg.Executor,
		Pool:     h.cfg.Pool,
	}
	if !run.NoStdin {
		spec.Stdin = bytes.NewReader(stdin)
	}
	h.jobs[run.ID] = j
	h.running++
	h.notify()
	h.wg.Add(1)
	log := h.log.With("job", run.ID, "lease", run.Lease, "lang", run.Lang, "program", run.Name)
	log.Info("reshd: job started")
	go func() {
		defer h.wg.Done()
		start := time.Now()
		end := j.run(ctx, spec)
		log.Info("reshd: job ended", "verdict", end.Verdict.Verdict, "detail", end.Verdict.Detail, "code", end.Exit.Code,
			"signal", end.Exit.Signal, "duration", time.Since(start).Round(time.Millisecond))
		h.ended(j)
	}()
	return j, nil
}

// ended counts j's end, and forgets it after HoldFor unless released.
func (h *Host) ended(j *Held) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running--
	h.notify()
	if h.jobs[j.id] == j && !h.closed {
		j.expiry = time.AfterFunc(h.cfg.HoldFor, func() { h.expire(j) })
	}
}

// expire forgets j, ended and never released.
func (h *Host) expire(j *Held) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.jobs[j.id] == j {
		h.log.Warn("reshd: forgot a job whose end no master released", "job", j.id, "lease", j.lease, "after", h.cfg.HoldFor)
		h.forgetLocked(j, nil)
	}
}

// forgetLocked removes j from the held jobs and kills it if it runs (with
// cause, when not nil). Called with h.mu.
func (h *Host) forgetLocked(j *Held, cause error) {
	if h.jobs[j.id] == j {
		delete(h.jobs, j.id)
	}
	if j.expiry != nil {
		j.expiry.Stop()
	}
	j.forget()
	if cause != nil {
		j.cancel(cause)
	}
}

// Resume returns the job held under id and lease, or
// cluster.ErrUnknownJob.
func (h *Host) Resume(id, lease int64) (*Held, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j := h.jobs[id]
	if j == nil || j.lease != lease {
		return nil, cluster.ErrUnknownJob
	}
	return j, nil
}

// Drop kills (if it runs) and forgets the job held under id and lease; it
// does nothing when there is none.
func (h *Host) Drop(id, lease int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if j := h.jobs[id]; j != nil && j.lease == lease {
		h.log.Info("reshd: job dropped", "job", id, "lease", lease)
		h.forgetLocked(j, errDropped)
	}
}

// Held lists the held jobs (running, or ended and not released), by id,
// for Join.
func (h *Host) Held() []cluster.HeldJob {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]cluster.HeldJob, 0, len(h.jobs))
	for _, j := range h.jobs {
		out = append(out, cluster.HeldJob{ID: j.id, Lease: j.lease, Ended: j.hasEnded()})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Running is how many jobs run (their processes may live, held or not):
// they count as tasks of the executor.
func (h *Host) Running() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running
}

// Changed receives a value (coalesced) whenever Running changes.
func (h *Host) Changed() <-chan struct{} { return h.changed }

// notify tells Changed's reader.
func (h *Host) notify() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// Close kills every running job and returns once they are gone (reshd's
// shutdown: their verdict is SANDBOX_ERROR). Run refuses from then on;
// the ended jobs stay held for whoever follows them.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	var all []*Held
	for _, j := range h.jobs {
		all = append(all, j)
		if j.expiry != nil {
			j.expiry.Stop()
		}
	}
	h.mu.Unlock()
	for _, j := range all {
		j.cancel(errShutdown)
	}
	h.wg.Wait()
}
