package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"
	"time"

	"resh/auth"
	jobs "resh/job"
	"resh/proto"
	"resh/scheduler"
	"resh/store"
)

// InsecureOwner owns the jobs submitted to a reshd -insecure, whose
// clients have no key.
const InsecureOwner = "insecure"

// isJobQuery reports a query of durable jobs (proto/spec.md §8).
func isJobQuery(q string) bool {
	switch q {
	case proto.QuerySubmit, proto.QueryRun, proto.QueryAttach, proto.QueryJobs, proto.QueryJob, proto.QueryCancel:
		return true
	}
	return false
}

// jobOwner is who the client is for its jobs: its key's fingerprint
// ("insecure" without TLS), and the owner its queries see (every job's,
// scheduler.AnyOwner, for the master's own keys: Config.JobAdmins).
func (ss *session) jobOwner() (owner, sees string) {
	owner = InsecureOwner
	if tc, ok := ss.conn.(*auth.Conn); ok {
		owner = tc.PeerFingerprint()
	}
	if slices.Contains(ss.srv.cfg.JobAdmins, owner) {
		return owner, scheduler.AnyOwner
	}
	return owner, owner
}

// answerJobs answers a query of durable jobs, then ends the session:
// after Jobs or an Error as after an Error, after an attach's Exit as
// after a command's.
func (ss *session) answerJobs(mux Mux, st *streams, h proto.Hello) {
	sch := ss.srv.cfg.Jobs
	if sch == nil {
		ss.refuse(mux, "reshd: this reshd keeps no jobs: submit them to a master or a standalone reshd")
		return
	}
	ctx, cancel := ss.untilGone(mux)
	defer cancel()
	owner, sees := ss.jobOwner()
	ss.log = ss.log.With("query", h.Query, "owner", owner)
	if h.Query == proto.QuerySubmit || h.Query == proto.QueryRun {
		id, ok := ss.submitJob(ctx, mux, st, h, owner)
		if !ok {
			return
		}
		if h.Query == proto.QuerySubmit {
			_ = ss.control.Close()
			ss.awaitClientClose(mux)
			return
		}
		ss.attachJob(ctx, mux, st, sees, proto.JobRequest{ID: id})
		return
	}
	req := h.JobRequest
	if req == nil {
		req = &proto.JobRequest{}
	}
	if h.Query != proto.QueryJobs && req.ID <= 0 {
		ss.refuse(mux, fmt.Sprintf("reshd: the %s query needs the job's id (job_request.id)", h.Query))
		return
	}
	var (
		list []proto.JobInfo
		err  error
	)
	switch h.Query {
	case proto.QueryAttach:
		ss.attachJob(ctx, mux, st, sees, *req)
		return
	case proto.QueryJobs:
		list, err = sch.List(ctx, sees, *req)
	case proto.QueryJob:
		var in proto.JobInfo
		if in, err = sch.Get(ctx, sees, req.ID); err == nil {
			list = []proto.JobInfo{in}
		}
	case proto.QueryCancel:
		var in proto.JobInfo
		if in, err = sch.Cancel(ctx, sees, req.ID, "cancelled by "+who(owner, sees)); err == nil {
			list = []proto.JobInfo{in}
		}
	}
	if err != nil {
		ss.refuse(mux, err.Error())
		return
	}
	ss.writeControl(proto.TypeJobs, proto.Jobs{Jobs: list})
	_ = ss.control.Close()
	ss.awaitClientClose(mux)
}

// who names the canceller in a job's reason.
func who(owner, sees string) string {
	if sees == scheduler.AnyOwner && owner != InsecureOwner {
		return "the master's key " + owner
	}
	return "its owner"
}

// submitJob reads the job's source and stdin from the stdin stream and
// stores the job, then sends Submitted. false: it refused, with an Error.
func (ss *session) submitJob(ctx context.Context, mux Mux, st *streams, h proto.Hello, owner string) (int64, bool) {
	j := h.Job
	if j == nil {
		ss.refuse(mux, fmt.Sprintf("reshd: the %s query needs a job (lang, name, size)", h.Query))
		return 0, false
	}
	if j.Size < 0 || j.Size > jobs.MaxSource {
		ss.refuse(mux, fmt.Sprintf("reshd: the program is %d bytes, more than the %d a program may be", j.Size, jobs.MaxSource))
		return 0, false
	}
	in := st.takeStdin()
	defer func() { _ = in.Close() }()
	src := make([]byte, j.Size)
	if n, err := io.ReadFull(in, src); err != nil {
		ss.refuse(mux, fmt.Sprintf("reshd: the program's source ended after %d of %d bytes", n, j.Size))
		return 0, false
	}
	stdin, err := io.ReadAll(io.LimitReader(in, proto.MaxJobStdin+1))
	switch {
	case err != nil:
		ss.refuse(mux, fmt.Sprintf("reshd: the job's stdin was cut after %d bytes: %v", len(stdin), err))
		return 0, false
	case len(stdin) > proto.MaxJobStdin:
		ss.refuse(mux, fmt.Sprintf("reshd: the job's stdin is more than the %d bytes a job's stdin may be", proto.MaxJobStdin))
		return 0, false
	}
	stored, err := ss.srv.cfg.Jobs.Submit(ctx, owner, *j, src, stdin)
	if err != nil {
		ss.refuse(mux, err.Error())
		return 0, false
	}
	ss.log.Info("reshd: job submitted", "job", stored.ID, "lang", j.Lang, "program", j.Name)
	ss.writeControl(proto.TypeSubmitted, proto.Submitted{ID: stored.ID})
	return stored.ID, true
}

// attachJob streams the job to the client (scheduler.Attach), serving
// its Signals (each cancels the job: its Exit is then that signal), then
// Verdict and Exit, and ends the session as after a command's Exit.
func (ss *session) attachJob(ctx context.Context, mux Mux, st *streams, sees string, req proto.JobRequest) {
	sch := ss.srv.cfg.Jobs
	ss.log = ss.log.With("job", req.ID)
	sk := &attachSink{ss: ss, st: st}
	controlDone := make(chan struct{})
	go func() {
		defer close(controlDone)
		ss.attachControl(ctx, sch, sees, req.ID, sk)
	}()
	err := sch.Attach(ctx, sees, req.ID, req.Stdout, req.Stderr, sk)
	_ = ss.control.SetReadDeadline(time.Unix(1, 0))
	<-controlDone
	switch {
	case err == nil:
	case errors.Is(err, scheduler.ErrNoJob), errors.Is(err, scheduler.ErrBadRequest):
		ss.refuse(mux, err.Error())
		return
	default:
		ss.log.Info("reshd: attached client gone", "err", err)
		return
	}
	_ = ss.control.Close()
	ss.awaitClientClose(mux)
}

// attachControl reads the control stream of an attached client until its
// read deadline passes: a Signal cancels the job.
func (ss *session) attachControl(ctx context.Context, sch *scheduler.Scheduler, sees string, id int64, sk *attachSink) {
	ss.eachSignal(func(name string, sig syscall.Signal) {
		ss.log.Info("reshd: the attached client cancels the job", "signal", name)
		// Marked first: the job's end may reach the client before Cancel
		// returns.
		sk.signalled(int(sig))
		if _, err := sch.Cancel(ctx, sees, id, "the attached client's signal "+name); err != nil {
			sk.signalled(0)
			ss.log.Info("reshd: cannot cancel the job", "err", err)
		}
	})
}

// attachSink writes an attached job to the session's streams.
type attachSink struct {
	ss *session
	st *streams

	mu  sync.Mutex
	sig int // the signal that cancelled the job, 0 if none
}

func (a *attachSink) signalled(sig int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sig = sig
}

// State sends JobState.
func (a *attachSink) State(s proto.JobState) error {
	a.ss.writeControl(proto.TypeJobState, s)
	return nil
}

// Output writes to the stdout or stderr stream.
func (a *attachSink) Output(s store.Stream, data []byte) error {
	w := a.st.stdout
	if s == store.Stderr {
		w = a.st.stderr
	}
	_, err := w.Write(data)
	return err
}

// End half-closes the outputs and sends Verdict and Exit: the signal's
// for a job its client's Signal cancelled.
func (a *attachSink) End(v proto.Verdict, e proto.Exit) error {
	a.mu.Lock()
	sig := a.sig
	a.mu.Unlock()
	if sig != 0 && v.Verdict == proto.VerdictCancelled {
		v.Signal, e = sig, proto.Exit{Signal: sig}
	}
	_ = a.st.stdout.Close()
	_ = a.st.stderr.Close()
	a.ss.log.Info("reshd: attached job ended", "verdict", v.Verdict, "code", e.Code, "signal", e.Signal)
	a.ss.writeControl(proto.TypeVerdict, v)
	a.ss.writeControl(proto.TypeExit, e)
	return nil
}
