package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"resh/proto"
	"resh/store"
)

// AnyOwner, as a query's owner, is the master's own keys': every job.
const AnyOwner = ""

// Submit checks the job as proto/spec.md §8 says (a language no known
// executor has is refused, unless no executor is known at all; stdin at
// most proto.MaxJobStdin), stores it for owner and returns it once the
// store committed it. stdin nil means none.
func (s *Scheduler) Submit(ctx context.Context, owner string, job proto.Job, source, stdin []byte) (store.Job, error) {
	if len(stdin) > proto.MaxJobStdin {
		return store.Job{}, fmt.Errorf("%w: %d bytes, more than the %d a job's stdin may be", ErrTooLarge, len(stdin), proto.MaxJobStdin)
	}
	if langs, any := s.cl.Languages(); any && !slices.Contains(langs, job.Lang) {
		sort.Strings(langs)
		have := "none"
		if len(langs) > 0 {
			have = strings.Join(langs, ", ")
		}
		return store.Job{}, fmt.Errorf("reshd: %w %s (the executors have: %s)", ErrNoLanguage, job.Lang, have)
	}
	var limits json.RawMessage
	if job.Limits != (proto.JobLimits{}) {
		b, err := json.Marshal(job.Limits)
		if err != nil {
			return store.Job{}, fmt.Errorf("reshd: the job's limits: %w", err)
		}
		limits = b
	}
	j, err := s.st.Submit(context.WithoutCancel(ctx), store.Job{
		Owner: owner, Lang: job.Lang, Name: job.Name, Args: job.Args,
		Source: source, Stdin: stdin, Limits: limits, MaxRetries: s.cfg.maxRetries(),
	})
	if err != nil {
		return store.Job{}, fmt.Errorf("reshd: cannot store the job: %w", err)
	}
	s.log.Info("reshd: job submitted", "job", j.ID, "owner", owner, "lang", j.Lang, "program", j.Name)
	return j, nil
}

// Get returns job id as owner sees it (AnyOwner: any job); ErrNoJob when
// it does not exist or is another's.
func (s *Scheduler) Get(ctx context.Context, owner string, id int64) (proto.JobInfo, error) {
	j, err := s.get(ctx, owner, id)
	if err != nil {
		return proto.JobInfo{}, err
	}
	return Info(j), nil
}

// get reads job id for owner.
func (s *Scheduler) get(ctx context.Context, owner string, id int64) (store.Job, error) {
	if id <= 0 {
		return store.Job{}, noJob(id)
	}
	j, err := s.st.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && owner != AnyOwner && j.Owner != owner) {
		return store.Job{}, noJob(id)
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("reshd: cannot read job %d: %w", id, err)
	}
	return j, nil
}

// List returns owner's jobs (AnyOwner: everyone's) as req asks: newest
// first, queued and running ones, or with All every state, or only those
// in req.State; at most req.Limit (0: 100, at most 1000).
func (s *Scheduler) List(ctx context.Context, owner string, req proto.JobRequest) ([]proto.JobInfo, error) {
	f := store.Filter{Owner: owner, Limit: req.Limit}
	switch {
	case req.State != "":
		st := store.State(req.State)
		if !st.Valid() {
			return nil, fmt.Errorf("%w: no state %q (queued, running, finished, cancelled, failed)", ErrBadRequest, req.State)
		}
		f.States = []store.State{st}
	case !req.All:
		f.States = []store.State{store.Queued, store.Running}
	}
	if req.Limit < 0 {
		return nil, fmt.Errorf("%w: a negative limit (%d)", ErrBadRequest, req.Limit)
	}
	jobs, err := s.st.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("reshd: cannot list the jobs: %w", err)
	}
	out := make([]proto.JobInfo, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, Info(j))
	}
	return out, nil
}

// CancelWait bounds how long Cancel waits for a running job's executor to
// kill it before it stores the job as cancelled anyway.
const CancelWait = 10 * time.Second

// Cancel cancels owner's job id (AnyOwner: any job) with reason: a
// queued one at once; a running one that this Scheduler runs is killed on
// its executor, then stored as cancelled (waiting at most CancelWait);
// any other is cancelled in the store, and the master that runs it, told
// by the store, kills it. It returns the job as it is after. A job that
// has ended is an *EndedError.
func (s *Scheduler) Cancel(ctx context.Context, owner string, id int64, reason string) (proto.JobInfo, error) {
	j, err := s.get(ctx, owner, id)
	if err != nil {
		return proto.JobInfo{}, err
	}
	if j.State.Ended() {
		return proto.JobInfo{}, &EndedError{ID: id, State: j.State}
	}
	if j.State == store.Running && s.killFirst(ctx, j, reason) {
		in, err := s.Get(ctx, owner, id)
		switch {
		case err != nil:
			return proto.JobInfo{}, err
		case in.State == string(store.Cancelled):
			return in, nil
		case in.State != string(store.Running) && in.State != string(store.Queued):
			return proto.JobInfo{}, &EndedError{ID: id, State: store.State(in.State)}
		}
	}
	_, err = s.st.Cancel(context.WithoutCancel(ctx), id, owner, reason)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return proto.JobInfo{}, noJob(id)
	case errors.Is(err, store.ErrState):
		j, gerr := s.get(ctx, owner, id)
		if gerr != nil {
			return proto.JobInfo{}, gerr
		}
		return proto.JobInfo{}, &EndedError{ID: id, State: j.State}
	case err != nil:
		return proto.JobInfo{}, fmt.Errorf("reshd: cannot cancel job %d: %w", id, err)
	}
	s.log.Info("reshd: job cancelled", "job", id, "reason", reason)
	s.mu.Lock()
	if s.pending != nil && s.pending.ID == id {
		s.pending = nil
		delete(s.jobs, id)
	}
	s.mu.Unlock()
	return s.Get(ctx, owner, id)
}

// killFirst asks the runner of the running job j, if this Scheduler
// runs it, to kill it and store it cancelled, and waits until the job has
// ended in the store, at most CancelWait. It returns false when this
// Scheduler does not run j.
func (s *Scheduler) killFirst(ctx context.Context, j store.Job, reason string) bool {
	changed, stop := s.st.Watch(j.ID)
	defer stop()
	s.mu.Lock()
	h := s.jobs[j.ID]
	ok := h != nil && h.lease == j.Lease && h.conn != nil
	if ok {
		select {
		case h.cancel <- reason:
		default: // asked already
		}
	}
	s.mu.Unlock()
	if !ok {
		return false
	}
	t := time.NewTimer(CancelWait)
	defer t.Stop()
	for {
		cur, err := s.st.Get(ctx, j.ID)
		if err != nil || cur.State.Ended() || cur.Lease != j.Lease {
			return true
		}
		select {
		case <-changed:
		case <-t.C:
			s.log.Warn("reshd: a job's executor did not kill it in time: cancelled anyway", "job", j.ID, "wait", CancelWait)
			return true
		case <-ctx.Done():
			return true
		}
	}
}

// Info is job j as the queries show it.
func Info(j store.Job) proto.JobInfo {
	in := proto.JobInfo{
		ID: j.ID, Owner: j.Owner, State: string(j.State), Lang: j.Lang, Name: j.Name, Args: j.Args,
		Executor: j.Executor, Attempts: j.Attempts, Submitted: rfc3339(j.Submitted), Started: rfc3339(j.Started),
		Ended: rfc3339(j.Ended), StdoutLen: j.StdoutLen, StderrLen: j.StderrLen,
	}
	if !j.Started.IsZero() && !j.Ended.IsZero() {
		in.DurationMS = j.Ended.Sub(j.Started).Milliseconds()
	}
	if j.State.Ended() {
		v, e := verdictOf(j)
		in.Verdict, in.Exit = v.Verdict, &e
	}
	if j.State == store.Cancelled || j.State == store.Failed {
		in.Reason = j.Reason
	}
	return in
}

// rfc3339 formats t, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
