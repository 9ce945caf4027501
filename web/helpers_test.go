package web

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"resh/cluster"
	"resh/jobhost"
	"resh/proto"
	"resh/scheduler"
	reshserver "resh/server"
	"resh/store"
)

var _ Jobs = (*scheduler.Scheduler)(nil)

// stackOptions tune newStack.
type stackOptions struct {
	token   string
	locals  Locals
	noStop  bool
	metrics http.Handler
	ping    time.Duration // 0: an hour
}

// stack is a master's dashboard over a real job stack: a SQLite store, a
// cluster.Master with an in-process executor "here" running sh programs
// without the sandbox, a Scheduler, and the API on an httptest.Server.
type stack struct {
	t       *testing.T
	ts      *httptest.Server
	addr    string // host:port of the server
	sched   *scheduler.Scheduler
	stopped chan struct{} // closed by Config.Stop
}

// newStack builds and starts a stack; the test's cleanup stops it.
func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "jobs.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	host := jobhost.New(jobhost.Config{Unsafe: true, Executor: "here"})
	t.Cleanup(host.Close)
	var sch *scheduler.Scheduler
	run, resume := reshserver.InProcessJobs(host, "here")
	m := cluster.NewMaster(cluster.Config{
		InProcessJobs: run, InProcessResume: resume,
		OnJoin: func(e string, held []cluster.HeldJob) { sch.OnJoin(e, held) },
		OnLost: func(e string) { sch.OnLost(e) },
	})
	t.Cleanup(m.Close)
	m.AddInProcess("here", []string{"sh"}, "test")
	sch, err = scheduler.New(scheduler.Config{Store: st, Cluster: scheduler.MasterCluster(m)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sch.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	ts := httptest.NewUnstartedServer(nil)
	s := &stack{t: t, ts: ts, addr: ts.Listener.Addr().String(), sched: sch, stopped: make(chan struct{})}
	started := time.Now().Add(-time.Minute)
	cfg := Config{
		Jobs:            sch,
		Executors:       m.Executors,
		Languages:       func() []string { l, _ := m.Languages(); return l },
		WaitingSessions: func() int { return 0 },
		Locals:          o.locals,
		Owner:           "SHA256:master",
		Info: func() Info {
			return Info{Name: "test", Version: "resh test", Started: started, Listen: "127.0.0.1:4200", HTTP: s.addr, Store: "sqlite", Secure: true}
		},
		Token:   o.token,
		Metrics: o.metrics,
		Hosts:   []string{"dashboard.example:4280"},
	}
	if !o.noStop {
		var once sync.Once
		cfg.Stop = func() { once.Do(func() { close(s.stopped) }) }
	}
	ping := o.ping
	if ping == 0 {
		ping = time.Hour
	}
	srv, err := newServer(cfg, ping)
	require.NoError(t, err)
	ts.Config.Handler = srv.handler()
	ts.Start()
	t.Cleanup(ts.Close) // first: the streams end before the stack stops
	return s
}

// request is one request to the stack.
type request struct {
	method, path, body string
	header             map[string]string
	host               string // the Host header; "": the server's address
	ctx                context.Context
}

// send sends rq and returns the answer, its body read unless stream.
func (s *stack) send(rq request, stream bool) (*http.Response, []byte) {
	s.t.Helper()
	ctx := rq.ctx
	if ctx == nil {
		ctx = s.t.Context()
	}
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, s.ts.URL+rq.path, body)
	require.NoError(s.t, err)
	if rq.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if rq.host != "" {
		req.Host = rq.host
	}
	resp, err := s.ts.Client().Do(req)
	require.NoError(s.t, err)
	if stream {
		return resp, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp, b
}

// do sends a request with a JSON body (none if "") and returns the status
// and body.
func (s *stack) do(method, path, body string) (int, []byte) {
	s.t.Helper()
	resp, b := s.send(request{method: method, path: path, body: body}, false)
	return resp.StatusCode, b
}

// requireError checks that an answer is the JSON error of status.
func requireError(t *testing.T, wantStatus int, status int, body []byte) string {
	t.Helper()
	require.Equal(t, wantStatus, status, "body: %s", body)
	var e map[string]string
	require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
	require.NotEmpty(t, e["error"])
	require.Len(t, e, 1)
	return e["error"]
}

// submit submits an sh program and returns its id.
func (s *stack) submit(src string) int64 {
	s.t.Helper()
	b, err := json.Marshal(map[string]string{"lang": "sh", "source": src})
	require.NoError(s.t, err)
	status, body := s.do("POST", "/api/v1/jobs", string(b))
	require.Equal(s.t, http.StatusCreated, status, "body: %s", body)
	var a struct {
		ID  int64         `json:"id"`
		Job proto.JobInfo `json:"job"`
	}
	require.NoError(s.t, json.Unmarshal(body, &a))
	require.Positive(s.t, a.ID)
	return a.ID
}

// event is one Server-Sent Event.
type event struct {
	name, id, data string
}

// eventStream reads the events of one answer.
type eventStream struct {
	t     *testing.T
	resp  *http.Response
	r     *bufio.Reader
	retry string
}

// open opens job id's event stream with the given Last-Event-ID ("":
// none) and query; reads fail after 30 s.
func (s *stack) open(id int64, lastID, query string) *eventStream {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 30*time.Second)
	s.t.Cleanup(cancel)
	rq := request{method: "GET", path: "/api/v1/jobs/" + itoa(id) + "/output" + query, ctx: ctx}
	if lastID != "" {
		rq.header = map[string]string{"Last-Event-ID": lastID}
	}
	resp, _ := s.send(rq, true)
	s.t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	require.Equal(s.t, "text/event-stream", resp.Header.Get("Content-Type"))
	return &eventStream{t: s.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event (comments and retry fields are skipped,
// the retry kept); io.EOF at the stream's end.
func (es *eventStream) next() (event, error) {
	var ev event
	for {
		line, err := es.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "retry: "):
			es.retry = strings.TrimPrefix(line, "retry: ")
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		default:
			es.t.Fatalf("unexpected line in the event stream: %q", line)
		}
	}
}

// mustNext is next that must succeed.
func (es *eventStream) mustNext() event {
	es.t.Helper()
	ev, err := es.next()
	require.NoError(es.t, err)
	return ev
}

// output is what a stream gave until its end.
type output struct {
	stdout, stderr string
	states         []string
	lastID         string
	end            endData
	restarts       int
}

// readToEnd reads events until end, then checks the stream ends.
func (es *eventStream) readToEnd() output {
	es.t.Helper()
	var o output
	for {
		ev := es.mustNext()
		switch ev.name {
		case "state":
			var st stateData
			require.NoError(es.t, json.Unmarshal([]byte(ev.data), &st))
			o.states = append(o.states, st.State)
		case "stdout", "stderr":
			var d outputData
			require.NoError(es.t, json.Unmarshal([]byte(ev.data), &d))
			b, err := base64.StdEncoding.DecodeString(d.Data)
			require.NoError(es.t, err)
			if ev.name == "stdout" {
				require.Equal(es.t, int64(len(o.stdout)), d.Offset-es.base())
				o.stdout += string(b)
			} else {
				o.stderr += string(b)
			}
			o.lastID = ev.id
		case "restart":
			o.restarts++
			o.stdout, o.stderr = "", ""
		case "end":
			require.NoError(es.t, json.Unmarshal([]byte(ev.data), &o.end))
			_, err := es.next()
			require.ErrorIs(es.t, err, io.EOF, "the stream must end after end")
			return o
		default:
			es.t.Fatalf("unexpected event %+v", ev)
		}
	}
}

// base is the stdout offset the stream was opened at (0: none given).
func (es *eventStream) base() int64 {
	if id := es.resp.Request.Header.Get("Last-Event-ID"); id != "" {
		n, _, err := parseEventID(id)
		require.NoError(es.t, err)
		return n
	}
	return 0
}

// itoa formats n in decimal.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
