package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"resh/proto"
	"resh/scheduler"
	"resh/store"
)

// scriptedJobs is a Jobs whose Attach plays script on the sink, then
// returns err: for what a real job cannot be made to do on cue (an
// attempt lost with its executor, a job purged while streamed).
type scriptedJobs struct {
	Jobs
	script func(scheduler.Sink) error
}

func (j scriptedJobs) Attach(_ context.Context, _ string, _, _, _ int64, sink scheduler.Sink) error {
	return j.script(sink)
}

// scriptedEvents serves one stream of script and returns its events.
func scriptedEvents(t *testing.T, script func(scheduler.Sink) error) []event {
	t.Helper()
	s, err := newServer(Config{
		Jobs:      scriptedJobs{script: script},
		Executors: func() []proto.ExecutorInfo { return nil },
		Info:      func() Info { return Info{HTTP: "127.0.0.1:4280"} },
	}, defaultPing)
	require.NoError(t, err)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://127.0.0.1:4280/api/v1/jobs/1/output?stdout=5", nil)
	s.handler().ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	es := &eventStream{t: t, r: bufio.NewReader(strings.NewReader(w.Body.String()))}
	var evs []event
	for {
		ev, err := es.next()
		if err != nil {
			break
		}
		evs = append(evs, ev)
	}
	require.Equal(t, "1000", es.retry)
	return evs
}

func TestRestartEvent(t *testing.T) {
	evs := scriptedEvents(t, func(s scheduler.Sink) error {
		require.NoError(t, s.State(proto.JobState{State: "queued"}))
		require.NoError(t, s.State(proto.JobState{State: "running", Executor: "e1", Attempt: 1}))
		require.NoError(t, s.Output(store.Stdout, []byte("ab")))
		require.NoError(t, s.State(proto.JobState{State: "queued"}))
		require.NoError(t, s.State(proto.JobState{State: "running", Executor: "e2", Attempt: 2}))
		require.NoError(t, s.Output(store.Stderr, []byte("c")))
		return s.End(proto.Verdict{Verdict: "OK"}, proto.Exit{})
	})
	require.Equal(t, []event{
		{name: "state", data: `{"state":"queued"}`},
		{name: "state", data: `{"state":"running","executor":"e1"}`},
		{name: "stdout", id: "7:0", data: `{"offset":5,"data":"YWI="}`},
		{name: "restart", data: `{}`},
		{name: "state", data: `{"state":"queued"}`},
		{name: "state", data: `{"state":"running","executor":"e2"}`},
		{name: "stderr", id: "0:1", data: `{"offset":0,"data":"Yw=="}`},
		{name: "end", data: `{"verdict":{"verdict":"OK","status":0,"wall_ms":0,"cpu_ms":0,"stdout":0,"stderr":0},"exit":{"code":0,"signal":0}}`},
	}, evs)
}

func TestErrorEvent(t *testing.T) {
	evs := scriptedEvents(t, func(s scheduler.Sink) error {
		require.NoError(t, s.State(proto.JobState{State: "queued"}))
		return scheduler.ErrNoJob
	})
	require.Equal(t, []event{
		{name: "state", data: `{"state":"queued"}`},
		{name: "error", data: `{"error":"reshd: no job"}`},
	}, evs)
}
