package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"resh/job"
	"resh/lang"
	"resh/proto"
	"resh/scheduler"
	"resh/store"
)

// maxArgs bounds a submitted job's arguments.
const maxArgs = 256

// cancelReason is the reason of a job cancelled from the dashboard.
const cancelReason = "cancelled from the dashboard"

// submitRequest is POST /api/v1/jobs's body.
type submitRequest struct {
	Lang   string           `json:"lang"`
	Name   string           `json:"name"`
	Source string           `json:"source"`
	Args   []string         `json:"args"`
	Stdin  *string          `json:"stdin"`
	Limits *proto.JobLimits `json:"limits"`
}

// submission is a checked submitRequest.
type submission struct {
	job    proto.Job
	source []byte
	stdin  []byte // nil: none
}

// decodeJSON decodes r's one JSON value into v: unknown fields, trailing
// data and malformed JSON are 400, a body too large 413.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return badRequest("the request body is empty: JSON expected")
		}
		return badRequest("the request body is not valid JSON: " + err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return badRequest("the request body has data after its JSON value")
	}
	return nil
}

// decodeSubmit reads and checks a submit body (spec.md, POST
// /api/v1/jobs).
func decodeSubmit(r io.Reader) (submission, error) {
	var req submitRequest
	if err := decodeJSON(r, &req); err != nil {
		return submission{}, err
	}
	switch {
	case req.Lang == "":
		return submission{}, badRequest("lang is required")
	case req.Source == "":
		return submission{}, badRequest("source is required")
	case len(req.Source) > job.MaxSource:
		return submission{}, tooLarge(fmt.Sprintf("the source is %d bytes, more than the %d a job's may be", len(req.Source), job.MaxSource))
	case req.Stdin != nil && len(*req.Stdin) > proto.MaxJobStdin:
		return submission{}, tooLarge(fmt.Sprintf("stdin is %d bytes, more than the %d a job's may be", len(*req.Stdin), proto.MaxJobStdin))
	case len(req.Args) > maxArgs:
		return submission{}, badRequest(fmt.Sprintf("%d arguments, more than %d", len(req.Args), maxArgs))
	}
	var limits proto.JobLimits
	if req.Limits != nil {
		limits = *req.Limits
		if limits.WallMS < 0 || limits.CPUMS < 0 || limits.Memory < 0 || limits.Procs < 0 || limits.Output < 0 {
			return submission{}, badRequest("limits must not be negative")
		}
	}
	name := req.Name
	if name == "" {
		name = "main"
		if l, ok := lang.Builtin().ByName(req.Lang); ok && len(l.Extensions) > 0 {
			name += l.Extensions[0]
		}
	}
	sub := submission{
		job:    proto.Job{Lang: req.Lang, Name: name, Size: int64(len(req.Source)), Args: req.Args, Limits: limits},
		source: []byte(req.Source),
	}
	if req.Stdin != nil {
		sub.stdin = []byte(*req.Stdin)
	}
	return sub, nil
}

// jobID is the {id} of r's path; 404 when it names no job.
func jobID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &httpError{http.StatusNotFound, fmt.Sprintf("no job %q", r.PathValue("id"))}
	}
	return id, nil
}

// infoAnswer is GET /api/v1/info's answer.
type infoAnswer struct {
	Info
	UptimeMS  int64       `json:"uptime_ms"`
	Languages []string    `json:"languages"`
	Locals    localsBrief `json:"locals"`
}

// localsBrief is the local executors in infoAnswer.
type localsBrief struct {
	Count     int  `json:"count"`
	Max       int  `json:"max"`
	Available bool `json:"available"`
}

// info answers GET /api/v1/info.
func (s *server) info(w http.ResponseWriter, r *http.Request) {
	in := s.cfg.Info()
	a := infoAnswer{Info: in, Languages: []string{}}
	a.Started = in.Started.UTC()
	if !in.Started.IsZero() {
		a.UptimeMS = time.Since(in.Started).Milliseconds()
	}
	if s.cfg.Languages != nil {
		if l := s.cfg.Languages(); l != nil {
			a.Languages = slices.Sorted(slices.Values(l))
		}
	}
	if s.cfg.Locals != nil {
		a.Locals = localsBrief{Count: len(s.cfg.Locals.List()), Max: s.cfg.Locals.Max(), Available: true}
	}
	writeJSON(w, http.StatusOK, a)
}

// submit answers POST /api/v1/jobs.
func (s *server) submit(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeError(w, r, s.log, errStopping)
		return
	}
	sub, err := decodeSubmit(r.Body)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	j, err := s.cfg.Jobs.Submit(r.Context(), s.cfg.Owner, sub.job, sub.source, sub.stdin)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/jobs/%d", j.ID))
	writeJSON(w, http.StatusCreated, map[string]any{"id": j.ID, "job": scheduler.Info(j)})
}

// jobsAnswer is a list of jobs.
type jobsAnswer struct {
	Jobs []proto.JobInfo `json:"jobs"`
}

// list answers GET /api/v1/jobs?state=S&limit=N.
func (s *server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := proto.JobRequest{All: true, Limit: store.DefaultListLimit}
	if st := q.Get("state"); st != "" {
		if !store.State(st).Valid() {
			writeError(w, r, s.log, badRequest(fmt.Sprintf("no state %q (queued, running, finished, cancelled, failed)", st)))
			return
		}
		req.State = st
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxListLimit {
			writeError(w, r, s.log, badRequest(fmt.Sprintf("limit %q: a number from 1 to %d", l, store.MaxListLimit)))
			return
		}
		req.Limit = n
	}
	jobs, err := s.cfg.Jobs.List(r.Context(), scheduler.AnyOwner, req)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, jobsAnswer{Jobs: orEmpty(jobs)})
}

// orEmpty is l, or an empty list for nil (JSON [] rather than null).
func orEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// jobAnswer is GET /api/v1/jobs/{id}'s answer.
type jobAnswer struct {
	Job    proto.JobInfo   `json:"job"`
	Result *proto.Verdict  `json:"result"`
	Source string          `json:"source"`
	Stdin  *string         `json:"stdin"`
	Limits json.RawMessage `json:"limits"`
}

// job answers GET /api/v1/jobs/{id}.
func (s *server) job(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	j, err := s.cfg.Jobs.Job(r.Context(), scheduler.AnyOwner, id)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	a := jobAnswer{Job: scheduler.Info(j), Source: string(j.Source)}
	if v, _, ok := scheduler.VerdictOf(j); ok {
		a.Result = &v
	}
	if j.Stdin != nil {
		in := string(j.Stdin)
		a.Stdin = &in
	}
	if len(j.Limits) > 0 && json.Valid(j.Limits) {
		a.Limits = j.Limits
	}
	writeJSON(w, http.StatusOK, a)
}

// cancel answers POST /api/v1/jobs/{id}/cancel.
func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if hasBody(r) {
		if err := decodeJSON(r.Body, &struct{}{}); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	in, err := s.cfg.Jobs.Cancel(r.Context(), scheduler.AnyOwner, id, cancelReason)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]proto.JobInfo{"job": in})
}

// executorAnswer is one executor in GET /api/v1/executors.
type executorAnswer struct {
	proto.ExecutorInfo
	Local bool `json:"local,omitempty"`
}

// executors answers GET /api/v1/executors.
func (s *server) executors(w http.ResponseWriter, r *http.Request) {
	local := map[string]bool{}
	if s.cfg.Locals != nil {
		for _, l := range s.cfg.Locals.List() {
			local[l.Name] = true
		}
	}
	out := []executorAnswer{}
	for _, e := range s.cfg.Executors() {
		out = append(out, executorAnswer{ExecutorInfo: e, Local: local[e.Name]})
	}
	slices.SortFunc(out, func(a, b executorAnswer) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, map[string][]executorAnswer{"executors": out})
}

// queueAnswer is GET /api/v1/queue's answer.
type queueAnswer struct {
	Jobs     []proto.JobInfo `json:"jobs"`
	Sessions int             `json:"sessions"`
}

// queue answers GET /api/v1/queue: the queued jobs, oldest first.
func (s *server) queue(w http.ResponseWriter, r *http.Request) {
	jobs, err := s.cfg.Jobs.List(r.Context(), scheduler.AnyOwner, proto.JobRequest{State: string(store.Queued), Limit: store.MaxListLimit})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	slices.Reverse(jobs)
	a := queueAnswer{Jobs: orEmpty(jobs)}
	if s.cfg.WaitingSessions != nil {
		a.Sessions = s.cfg.WaitingSessions()
	}
	writeJSON(w, http.StatusOK, a)
}

// localsAnswer is the answer of the /api/v1/locals routes.
type localsAnswer struct {
	Count     int     `json:"count"`
	Max       int     `json:"max"`
	Executors []Local `json:"executors"`
}

// writeLocals answers the local executors as they are now, with status.
func (s *server) writeLocals(w http.ResponseWriter, status int) {
	l := orEmpty(s.cfg.Locals.List())
	writeJSON(w, status, localsAnswer{Count: len(l), Max: s.cfg.Locals.Max(), Executors: l})
}

// withLocals answers 503 to the local executors' routes of a master that
// cannot manage them, and passes the others to h.
func (s *server) withLocals(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Locals == nil {
			writeError(w, r, s.log, errNoLocals)
			return
		}
		h(w, r)
	}
}

// locals answers GET /api/v1/locals.
func (s *server) locals(w http.ResponseWriter, r *http.Request) {
	s.writeLocals(w, http.StatusOK)
}

// setLocals answers PUT /api/v1/locals {"count":N}.
func (s *server) setLocals(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Count *int `json:"count"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	max := s.cfg.Locals.Max()
	if req.Count == nil || *req.Count < 0 || *req.Count > max {
		writeError(w, r, s.log, badRequest(fmt.Sprintf("count: a number from 0 to %d is required", max)))
		return
	}
	if err := s.cfg.Locals.SetCount(*req.Count); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.writeLocals(w, http.StatusOK)
}

// startLocal answers POST /api/v1/locals: one more local executor.
func (s *server) startLocal(w http.ResponseWriter, r *http.Request) {
	if hasBody(r) {
		if err := decodeJSON(r.Body, &struct{}{}); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	if len(s.cfg.Locals.List()) >= s.cfg.Locals.Max() {
		writeError(w, r, s.log, &httpError{http.StatusConflict, fmt.Sprintf("%d local executors run already, the most there may be", s.cfg.Locals.Max())})
		return
	}
	if _, err := s.cfg.Locals.Start(); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.writeLocals(w, http.StatusCreated)
}

// stopLocal answers DELETE /api/v1/locals/{name}.
func (s *server) stopLocal(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.cfg.Locals.Stop(name); err != nil {
		if errors.Is(err, ErrNoLocal) {
			err = &httpError{http.StatusNotFound, fmt.Sprintf("no local executor %q", name)}
		}
		writeError(w, r, s.log, err)
		return
	}
	s.writeLocals(w, http.StatusOK)
}

// stop answers POST /api/v1/stop {"confirm":true}, then stops the master.
func (s *server) stop(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stop == nil {
		writeError(w, r, s.log, errNoStop)
		return
	}
	var req struct {
		Confirm bool `json:"confirm"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if !req.Confirm {
		writeError(w, r, s.log, badRequest(`{"confirm":true} is required to stop the master`))
		return
	}
	s.stopping.Store(true)
	writeJSON(w, http.StatusAccepted, map[string]bool{"stopping": true})
	s.log.Info("web: the master stops, as asked from the dashboard")
	s.stopOnce.Do(func() { go s.cfg.Stop() })
}
