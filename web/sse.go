package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"resh/proto"
	"resh/scheduler"
	"resh/store"
)

// maxEventData bounds the output bytes of one stdout or stderr event.
const maxEventData = 64 << 10

// retryMS is the reconnection delay an event stream asks of EventSource.
const retryMS = 1000

// parseEventID parses an event id "N:M": the stdout and stderr offsets
// reached, decimal and not negative.
func parseEventID(id string) (stdout, stderr int64, err error) {
	a, b, ok := strings.Cut(id, ":")
	if !ok {
		return 0, 0, badRequest(fmt.Sprintf("Last-Event-ID %q: N:M expected", id))
	}
	stdout, err1 := parseOffset(a)
	stderr, err2 := parseOffset(b)
	if err1 != nil || err2 != nil {
		return 0, 0, badRequest(fmt.Sprintf("Last-Event-ID %q: N:M expected, two offsets", id))
	}
	return stdout, stderr, nil
}

// parseOffset parses an offset: decimal digits only, not negative.
func parseOffset(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not an offset")
	}
	return strconv.ParseInt(s, 10, 64)
}

// eventID is the id "N:M" of offsets.
func eventID(stdout, stderr int64) string {
	return strconv.FormatInt(stdout, 10) + ":" + strconv.FormatInt(stderr, 10)
}

// offsets are where a stream of r starts: its Last-Event-ID, else its
// stdout and stderr query parameters, else 0.
func offsets(r *http.Request) (stdout, stderr int64, err error) {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return parseEventID(id)
	}
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		to   *int64
	}{{"stdout", &stdout}, {"stderr", &stderr}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		if *p.to, err = parseOffset(v); err != nil {
			return 0, 0, badRequest(fmt.Sprintf("%s=%q: a byte offset expected", p.name, v))
		}
	}
	return stdout, stderr, nil
}

// output answers GET /api/v1/jobs/{id}/output: the job as Server-Sent
// Events (spec.md), live until its end.
func (s *server) output(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	stdout, stderr, err := offsets(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	es := &events{w: w, rc: http.NewResponseController(w), off: [3]int64{0, stdout, stderr}}
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		es.pingEvery(ctx, s.ping)
	}()
	err = s.cfg.Jobs.Attach(ctx, scheduler.AnyOwner, id, stdout, stderr, es)
	cancel()
	<-pinged
	switch {
	case err == nil:
	case r.Context().Err() != nil: // the client went away
	case !es.isStarted():
		writeError(w, r, s.log, err)
	default:
		if statusOf(err) == http.StatusInternalServerError {
			s.log.Error("web: a job's event stream failed", "job", id, "err", err)
		}
		_ = es.event("error", "", map[string]string{"error": err.Error()})
	}
}

// events writes one job's event stream: it is the scheduler.Sink of
// Attach. Its headers go out with the first event, so that an error
// before it (an unknown job) is answered as JSON.
type events struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu      sync.Mutex // the writes: Attach's and the pings'
	started bool
	running bool     // a running state was sent: a queued one next is a restart
	off     [3]int64 // by store.Stream: the offsets reached
}

var _ scheduler.Sink = (*events)(nil)

// isStarted reports whether the stream's headers are written.
func (e *events) isStarted() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// start writes the headers and the retry field, once; e.mu is held.
func (e *events) start() error {
	if e.started {
		return nil
	}
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	_ = e.rc.SetWriteDeadline(time.Time{}) // the stream lasts as long as the job
	e.w.WriteHeader(http.StatusOK)
	_, err := fmt.Fprintf(e.w, "retry: %d\n\n", retryMS)
	return err
}

// write writes one event (id may be empty) and flushes it; e.mu is held.
func (e *events) write(name, id string, data any) error {
	if err := e.start(); err != nil {
		return err
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var sb strings.Builder
	sb.WriteString("event: " + name + "\n")
	if id != "" {
		sb.WriteString("id: " + id + "\n")
	}
	sb.WriteString("data: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	if _, err := e.w.Write([]byte(sb.String())); err != nil {
		return err
	}
	return e.rc.Flush()
}

// event writes one event under e.mu.
func (e *events) event(name, id string, data any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.write(name, id, data)
}

// pingEvery writes a ": ping" comment every d once the stream started,
// until ctx is done.
func (e *events) pingEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		if e.started {
			if _, err := e.w.Write([]byte(": ping\n\n")); err == nil {
				_ = e.rc.Flush()
			}
		}
		e.mu.Unlock()
	}
}

// stateData is a state event's data.
type stateData struct {
	State    string `json:"state"`
	Executor string `json:"executor,omitempty"`
}

// State writes a state event, after a restart event when the job is
// queued again after it ran (its attempt was lost: the output starts
// again from 0).
func (e *events) State(st proto.JobState) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.State == string(store.Queued) && e.running {
		e.running = false
		e.off = [3]int64{}
		if err := e.write("restart", "", struct{}{}); err != nil {
			return err
		}
	}
	if st.State == string(store.Running) {
		e.running = true
	}
	return e.write("state", "", stateData{State: st.State, Executor: st.Executor})
}

// outputData is a stdout or stderr event's data.
type outputData struct {
	Offset int64  `json:"offset"`
	Data   string `json:"data"` // base64
}

// Output writes data as stdout or stderr events of at most maxEventData
// bytes each.
func (e *events) Output(s store.Stream, data []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(data) > 0 {
		n := min(len(data), maxEventData)
		d := outputData{Offset: e.off[s], Data: base64.StdEncoding.EncodeToString(data[:n])}
		e.off[s] += int64(n)
		if err := e.write(s.String(), eventID(e.off[store.Stdout], e.off[store.Stderr]), d); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// exitData is the exit in an end event.
type exitData struct {
	Code   int `json:"code"`
	Signal int `json:"signal"`
}

// endData is an end event's data.
type endData struct {
	Verdict proto.Verdict `json:"verdict"`
	Exit    exitData      `json:"exit"`
}

// End writes the end event.
func (e *events) End(v proto.Verdict, x proto.Exit) error {
	return e.event("end", "", endData{Verdict: v, Exit: exitData{Code: x.Code, Signal: x.Signal}})
}
