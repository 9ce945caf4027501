package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"resh/job"
	"resh/proto"
	"resh/scheduler"
)

func TestInfo(t *testing.T) {
	s := newStack(t, stackOptions{})
	status, body := s.do("GET", "/api/v1/info", "")
	require.Equal(t, http.StatusOK, status)
	var a map[string]any
	require.NoError(t, json.Unmarshal(body, &a))
	require.Equal(t, "test", a["name"])
	require.Equal(t, s.addr, a["http"])
	require.Equal(t, false, a["https"])
	require.Equal(t, true, a["secure"])
	require.Equal(t, []any{"sh"}, a["languages"])
	require.GreaterOrEqual(t, a["uptime_ms"], float64(60000))
	require.Equal(t, map[string]any{"count": float64(0), "max": float64(0), "available": false}, a["locals"])
}

func TestSubmitAndGet(t *testing.T) {
	s := newStack(t, stackOptions{})
	req := `{"lang":"sh","source":"cat; echo \"$1\" >&2; exit 3","args":["arg1"],"stdin":"in\n","limits":{"wall_ms":20000}}`
	resp, body := s.send(request{method: "POST", path: "/api/v1/jobs", body: req}, false)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "body: %s", body)
	var sub struct {
		ID  int64         `json:"id"`
		Job proto.JobInfo `json:"job"`
	}
	require.NoError(t, json.Unmarshal(body, &sub))
	require.Equal(t, fmt.Sprintf("/api/v1/jobs/%d", sub.ID), resp.Header.Get("Location"))
	require.Equal(t, "SHA256:master", sub.Job.Owner)
	require.Equal(t, "main.sh", sub.Job.Name)
	require.Equal(t, []string{"arg1"}, sub.Job.Args)

	o := s.open(sub.ID, "", "").readToEnd()
	require.Equal(t, "in\n", o.stdout)
	require.Equal(t, "arg1\n", o.stderr)
	require.Equal(t, proto.VerdictRuntimeError, o.end.Verdict.Verdict)
	require.Equal(t, 3, o.end.Verdict.Status)
	require.Equal(t, 3, o.end.Exit.Code)
	require.Equal(t, "3:5", o.lastID)

	status, body := s.do("GET", fmt.Sprintf("/api/v1/jobs/%d", sub.ID), "")
	require.Equal(t, http.StatusOK, status)
	var got struct {
		Job    proto.JobInfo   `json:"job"`
		Result *proto.Verdict  `json:"result"`
		Source string          `json:"source"`
		Stdin  *string         `json:"stdin"`
		Limits json.RawMessage `json:"limits"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "finished", got.Job.State)
	require.Equal(t, int64(3), got.Job.StdoutLen)
	require.NotNil(t, got.Result)
	require.Equal(t, proto.VerdictRuntimeError, got.Result.Verdict)
	require.Equal(t, "here", got.Result.Executor)
	require.Equal(t, `cat; echo "$1" >&2; exit 3`, got.Source)
	require.NotNil(t, got.Stdin)
	require.Equal(t, "in\n", *got.Stdin)
	require.JSONEq(t, `{"wall_ms":20000}`, string(got.Limits))

	// Without stdin or limits both are null; an ended job's stream gives
	// its output then end again at once.
	id := s.submit("echo hi")
	o = s.open(id, "", "").readToEnd()
	require.Equal(t, "hi\n", o.stdout)
	require.Equal(t, proto.VerdictOK, o.end.Verdict.Verdict)
	require.Equal(t, 0, o.end.Exit.Code)
	_, body = s.do("GET", fmt.Sprintf("/api/v1/jobs/%d", id), "")
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &raw))
	require.Equal(t, "null", string(raw["stdin"]))
	require.Equal(t, "null", string(raw["limits"]))
	o = s.open(id, "", "?stdout=3").readToEnd()
	require.Empty(t, o.stdout)
	require.Empty(t, o.states, "an ended job has no state event")
	require.Equal(t, proto.VerdictOK, o.end.Verdict.Verdict)

	// The list, newest first, by state and limit.
	status, body = s.do("GET", "/api/v1/jobs", "")
	require.Equal(t, http.StatusOK, status)
	var l jobsAnswer
	require.NoError(t, json.Unmarshal(body, &l))
	require.Len(t, l.Jobs, 2)
	require.Equal(t, id, l.Jobs[0].ID)
	_, body = s.do("GET", "/api/v1/jobs?state=finished&limit=1", "")
	require.NoError(t, json.Unmarshal(body, &l))
	require.Len(t, l.Jobs, 1)
	_, body = s.do("GET", "/api/v1/jobs?state=queued", "")
	require.JSONEq(t, `{"jobs":[]}`, string(body))
	for _, q := range []string{"state=done", "limit=0", "limit=1001", "limit=x"} {
		status, body = s.do("GET", "/api/v1/jobs?"+q, "")
		requireError(t, http.StatusBadRequest, status, body)
	}
}

func TestResumeWithLastEventID(t *testing.T) {
	s := newStack(t, stackOptions{})
	gate := filepath.Join(t.TempDir(), "go")
	id := s.submit(fmt.Sprintf("printf one; echo e1 >&2; while [ ! -e %s ]; do sleep 0.01; done; printf two", gate))
	es := s.open(id, "", "")
	var first event
	for first.name != "stdout" {
		first = es.mustNext()
	}
	require.Equal(t, "1000", es.retry)
	require.Contains(t, []string{"3:0", "3:3"}, first.id)
	require.NoError(t, es.resp.Body.Close())
	require.NoError(t, os.WriteFile(gate, nil, 0o600))

	// The query's offsets are overridden by Last-Event-ID.
	o := s.open(id, first.id, "?stdout=0&stderr=0").readToEnd()
	require.Equal(t, "two", o.stdout)
	if first.id == "3:0" {
		require.Equal(t, "e1\n", o.stderr)
	} else {
		require.Empty(t, o.stderr)
	}
	require.Equal(t, "6:3", o.lastID)
	require.Equal(t, proto.VerdictOK, o.end.Verdict.Verdict)

	// Bad offsets are 400 before the stream.
	for _, h := range []map[string]string{{"Last-Event-ID": "3"}, {"Last-Event-ID": "-1:0"}, {"Last-Event-ID": "a:b"}} {
		resp, body := s.send(request{method: "GET", path: fmt.Sprintf("/api/v1/jobs/%d/output", id), header: h}, false)
		requireError(t, http.StatusBadRequest, resp.StatusCode, body)
	}
	status, body := s.do("GET", fmt.Sprintf("/api/v1/jobs/%d/output?stdout=-2", id), "")
	requireError(t, http.StatusBadRequest, status, body)
	status, body = s.do("GET", "/api/v1/jobs/999/output", "")
	requireError(t, http.StatusNotFound, status, body)
}

func TestLargeOutputChunks(t *testing.T) {
	s := newStack(t, stackOptions{})
	id := s.submit("head -c 200000 /dev/zero")
	es := s.open(id, "", "")
	var n int
	for {
		ev := es.mustNext()
		if ev.name == "end" {
			break
		}
		if ev.name == "stdout" {
			var d outputData
			require.NoError(t, json.Unmarshal([]byte(ev.data), &d))
			require.Equal(t, int64(n), d.Offset)
			b := mustBase64(t, d.Data)
			require.LessOrEqual(t, len(b), maxEventData)
			require.NotEmpty(t, b)
			n += len(b)
		}
	}
	require.Equal(t, 200000, n)
}

func TestPing(t *testing.T) {
	s := newStack(t, stackOptions{ping: 10 * time.Millisecond})
	gate := filepath.Join(t.TempDir(), "go")
	id := s.submit(fmt.Sprintf("while [ ! -e %s ]; do sleep 0.01; done", gate))
	es := s.open(id, "", "")
	require.Equal(t, "state", es.mustNext().name)
	for {
		line, err := es.r.ReadString('\n')
		require.NoError(t, err)
		if line == ": ping\n" {
			break
		}
	}
	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	require.Equal(t, proto.VerdictOK, es.readToEnd().end.Verdict.Verdict)
}

func TestCancel(t *testing.T) {
	s := newStack(t, stackOptions{})
	id := s.submit("sleep 60")
	es := s.open(id, "", "")
	for {
		ev := es.mustNext()
		if ev.name == "state" && strings.Contains(ev.data, `"running"`) {
			require.JSONEq(t, `{"state":"running","executor":"here"}`, ev.data)
			break
		}
	}
	status, body := s.do("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", id), "")
	require.Equal(t, http.StatusOK, status, "body: %s", body)
	var a struct {
		Job proto.JobInfo `json:"job"`
	}
	require.NoError(t, json.Unmarshal(body, &a))
	require.Equal(t, "cancelled", a.Job.State)
	o := es.readToEnd()
	require.Equal(t, proto.VerdictCancelled, o.end.Verdict.Verdict)
	require.Equal(t, proto.ExitCancelled, o.end.Exit.Code)

	status, body = s.do("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", id), "{}")
	requireError(t, http.StatusConflict, status, body)
	status, body = s.do("POST", "/api/v1/jobs/999/cancel", "")
	requireError(t, http.StatusNotFound, status, body)
	status, body = s.do("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", id), `{"why":1}`)
	requireError(t, http.StatusBadRequest, status, body)

	// A queued job is cancelled too: the queue shows it until then.
	_, body = s.do("GET", fmt.Sprintf("/api/v1/jobs/%d", id), "")
	require.Contains(t, string(body), `"result":{"verdict":"CANCELLED"`)
}

func TestUnknownJob(t *testing.T) {
	s := newStack(t, stackOptions{})
	for _, p := range []string{"/api/v1/jobs/999", "/api/v1/jobs/0", "/api/v1/jobs/x", "/api/v1/jobs/-3"} {
		status, body := s.do("GET", p, "")
		requireError(t, http.StatusNotFound, status, body)
	}
}

func TestSubmitBadInput(t *testing.T) {
	s := newStack(t, stackOptions{})
	big := strings.Repeat("x", job.MaxSource+1)
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{"lang":"sh"`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
		{`[]`, http.StatusBadRequest},
		{`{"lang":"sh","source":"echo","extra":1}`, http.StatusBadRequest},
		{`{"lang":"sh","source":"echo"} {}`, http.StatusBadRequest},
		{`{"source":"echo"}`, http.StatusBadRequest},
		{`{"lang":"sh"}`, http.StatusBadRequest},
		{`{"lang":"sh","source":"echo","limits":{"wall_ms":-1}}`, http.StatusBadRequest},
		{`{"lang":"sh","source":"echo","limits":{"procs":-1}}`, http.StatusBadRequest},
		{`{"lang":"sh","source":"echo","limits":{"disk":1}}`, http.StatusBadRequest},
		{`{"lang":"sh","source":"echo","args":[` + strings.Repeat(`"a",`, 256) + `"a"]}`, http.StatusBadRequest},
		{`{"lang":"sh","source":"` + big + `"}`, http.StatusRequestEntityTooLarge},
		{`{"lang":"sh","source":"cat","stdin":"` + strings.Repeat("x", proto.MaxJobStdin+1) + `"}`, http.StatusRequestEntityTooLarge},
		{`{"lang":"sh","source":"` + strings.Repeat("x", maxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{`{"lang":"cobol","source":"DISPLAY 'HI'."}`, http.StatusUnprocessableEntity},
	} {
		status, body := s.do("POST", "/api/v1/jobs", c.body)
		msg := requireError(t, c.status, status, body)
		if c.status == http.StatusUnprocessableEntity {
			require.Contains(t, msg, "sh", "the message lists the languages there are")
		}
	}
	status, body := s.do("GET", "/api/v1/jobs", "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"jobs":[]}`, string(body), "nothing was submitted")

	// Not JSON: 415.
	resp, body := s.send(request{method: "POST", path: "/api/v1/jobs", body: `{"lang":"sh","source":"echo"}`,
		header: map[string]string{"Content-Type": "text/plain"}}, false)
	requireError(t, http.StatusUnsupportedMediaType, resp.StatusCode, body)
	resp, body = s.send(request{method: "POST", path: "/api/v1/jobs", body: `{"lang":"sh","source":"echo"}`,
		header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}, false)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "body: %s", body)
}

func TestExecutorsAndQueue(t *testing.T) {
	s := newStack(t, stackOptions{locals: newFakeLocals("here")})
	status, body := s.do("GET", "/api/v1/executors", "")
	require.Equal(t, http.StatusOK, status)
	var a struct {
		Executors []map[string]any `json:"executors"`
	}
	require.NoError(t, json.Unmarshal(body, &a))
	require.Len(t, a.Executors, 1)
	require.Equal(t, "here", a.Executors[0]["name"])
	require.Equal(t, "in-process", a.Executors[0]["addr"])
	require.Equal(t, true, a.Executors[0]["local"])
	require.Equal(t, []any{"sh"}, a.Executors[0]["languages"])

	status, body = s.do("GET", "/api/v1/queue", "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"jobs":[],"sessions":0}`, string(body))
}

// fakeLocals is a Locals kept in memory.
type fakeLocals struct {
	mu    sync.Mutex
	names []string
	next  int
}

// newFakeLocals has the local executors names.
func newFakeLocals(names ...string) *fakeLocals {
	return &fakeLocals{names: names, next: len(names) + 1}
}

func (f *fakeLocals) List() []Local {
	f.mu.Lock()
	defer f.mu.Unlock()
	var l []Local
	for i, n := range f.names {
		l = append(l, Local{Name: n, Running: true, PID: 100 + i})
	}
	return l
}

func (f *fakeLocals) SetCount(n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.names) < n {
		f.names = append(f.names, fmt.Sprintf("local-%d", f.next))
		f.next++
	}
	f.names = f.names[:n]
	return nil
}

func (f *fakeLocals) Start() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := fmt.Sprintf("local-%d", f.next)
	f.next++
	f.names = append(f.names, n)
	return n, nil
}

func (f *fakeLocals) Stop(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.names, name)
	if i < 0 {
		return fmt.Errorf("stop %s: %w", name, ErrNoLocal)
	}
	f.names = slices.Delete(f.names, i, i+1)
	return nil
}

func (f *fakeLocals) Max() int { return 4 }

func TestLocals(t *testing.T) {
	s := newStack(t, stackOptions{locals: newFakeLocals("local-1")})
	status, body := s.do("GET", "/api/v1/locals", "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"count":1,"max":4,"executors":[{"name":"local-1","running":true,"pid":100,"restarts":0}]}`, string(body))

	status, body = s.do("POST", "/api/v1/locals", "")
	require.Equal(t, http.StatusCreated, status)
	require.Contains(t, string(body), `"count":2`)
	require.Contains(t, string(body), `"local-2"`)

	status, body = s.do("PUT", "/api/v1/locals", `{"count":4}`)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"count":4`)
	status, body = s.do("POST", "/api/v1/locals", "")
	requireError(t, http.StatusConflict, status, body)

	for _, b := range []string{`{"count":5}`, `{"count":-1}`, `{}`, `{"count":"2"}`, `{"n":2}`} {
		status, body = s.do("PUT", "/api/v1/locals", b)
		requireError(t, http.StatusBadRequest, status, body)
	}
	status, body = s.do("DELETE", "/api/v1/locals/local-2", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"count":3`)
	require.NotContains(t, string(body), `"local-2"`)
	status, body = s.do("DELETE", "/api/v1/locals/local-2", "")
	requireError(t, http.StatusNotFound, status, body)

	_, body = s.do("GET", "/api/v1/info", "")
	require.Contains(t, string(body), `"locals":{"count":3,"max":4,"available":true}`)

	// Without Locals every route is 503.
	s = newStack(t, stackOptions{})
	for _, c := range [][3]string{{"GET", "/api/v1/locals", ""}, {"PUT", "/api/v1/locals", `{"count":1}`},
		{"POST", "/api/v1/locals", ""}, {"DELETE", "/api/v1/locals/local-1", ""}} {
		status, body = s.do(c[0], c[1], c[2])
		requireError(t, http.StatusServiceUnavailable, status, body)
	}
}

func TestStop(t *testing.T) {
	s := newStack(t, stackOptions{})
	status, body := s.do("GET", "/healthz", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok\n", string(body))
	for _, b := range []string{"", `{}`, `{"confirm":false}`, `{"confirm":true,"now":1}`} {
		status, body = s.do("POST", "/api/v1/stop", b)
		requireError(t, http.StatusBadRequest, status, body)
	}
	select {
	case <-s.stopped:
		t.Fatal("stopped without confirm")
	default:
	}
	status, body = s.do("POST", "/api/v1/stop", `{"confirm":true}`)
	require.Equal(t, http.StatusAccepted, status)
	require.JSONEq(t, `{"stopping":true}`, string(body))
	<-s.stopped
	status, _ = s.do("GET", "/healthz", "")
	require.Equal(t, http.StatusServiceUnavailable, status)
	status, body = s.do("POST", "/api/v1/jobs", `{"lang":"sh","source":"echo"}`)
	requireError(t, http.StatusServiceUnavailable, status, body)

	s = newStack(t, stackOptions{noStop: true})
	status, body = s.do("POST", "/api/v1/stop", `{"confirm":true}`)
	requireError(t, http.StatusServiceUnavailable, status, body)
}

func TestRoutes(t *testing.T) {
	s := newStack(t, stackOptions{})
	status, body := s.do("GET", "/api/v1/nothing", "")
	requireError(t, http.StatusNotFound, status, body)
	status, body = s.do("GET", "/api/v2/jobs", "")
	requireError(t, http.StatusNotFound, status, body)
	resp, body := s.send(request{method: "DELETE", path: "/api/v1/jobs"}, false)
	requireError(t, http.StatusMethodNotAllowed, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("Allow"), "GET")
	require.Contains(t, resp.Header.Get("Allow"), "POST")
	resp, body = s.send(request{method: "GET", path: "/api/v1/stop"}, false)
	requireError(t, http.StatusMethodNotAllowed, resp.StatusCode, body)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	status, _ = s.do("GET", "/metrics", "")
	require.Equal(t, http.StatusNotFound, status)
}

func TestAccess(t *testing.T) {
	s := newStack(t, stackOptions{})
	for _, h := range []string{"evil.example", "evil.example:80", "localhost:1", "127.0.0.1"} {
		resp, body := s.send(request{method: "GET", path: "/api/v1/info", host: h}, false)
		requireError(t, http.StatusMisdirectedRequest, resp.StatusCode, body)
	}
	_, port, _ := strings.Cut(s.addr, ":")
	for _, h := range []string{"localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "dashboard.example:4280"} {
		resp, body := s.send(request{method: "GET", path: "/api/v1/info", host: h}, false)
		require.Equal(t, http.StatusOK, resp.StatusCode, "host %s: %s", h, body)
	}

	// Cross-site writes are refused; same-site ones and reads are not.
	resp, body := s.send(request{method: "POST", path: "/api/v1/stop", body: `{"confirm":true}`,
		header: map[string]string{"Origin": "http://evil.example"}}, false)
	requireError(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = s.send(request{method: "DELETE", path: "/api/v1/locals/x",
		header: map[string]string{"Origin": "null"}}, false)
	requireError(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = s.send(request{method: "PUT", path: "/api/v1/locals", body: `{"count":1}`,
		header: map[string]string{"Origin": "https://" + s.addr}}, false)
	requireError(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = s.send(request{method: "POST", path: "/api/v1/jobs/1/cancel",
		header: map[string]string{"Origin": "http://" + s.addr}}, false)
	requireError(t, http.StatusNotFound, resp.StatusCode, body)
	resp, _ = s.send(request{method: "GET", path: "/api/v1/info",
		header: map[string]string{"Origin": "http://evil.example"}}, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	select {
	case <-s.stopped:
		t.Fatal("a cross-site request stopped the master")
	default:
	}
}

func TestToken(t *testing.T) {
	const token = "0123456789abcdef"
	s := newStack(t, stackOptions{token: token})
	for _, rq := range []request{
		{method: "GET", path: "/api/v1/info"},
		{method: "GET", path: "/healthz"},
		{method: "GET", path: "/"},
		{method: "GET", path: "/static/api.js"},
		{method: "GET", path: "/api/v1/nothing"},
		{method: "GET", path: "/api/v1/info", header: map[string]string{"Authorization": "Bearer wrong"}},
		{method: "GET", path: "/api/v1/info", header: map[string]string{"Authorization": "Basic " + token}},
		{method: "GET", path: "/api/v1/info?token=wrong"},
		{method: "GET", path: "/api/v1/info", header: map[string]string{"Cookie": "resh_token=" + token + "x"}},
		{method: "POST", path: "/api/v1/stop?token=" + token, body: `{"confirm":true}`},
	} {
		resp, body := s.send(rq, false)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%+v", rq)
		require.JSONEq(t, `{"error":"token required"}`, string(body))
		require.Empty(t, resp.Cookies())
	}

	resp, body := s.send(request{method: "GET", path: "/api/v1/info", header: map[string]string{"Authorization": "Bearer " + token}}, false)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	require.Empty(t, resp.Cookies())
	// With a token, any name of the machine reaches it (no Host check:
	// the token is what DNS rebinding cannot get).
	resp, body = s.send(request{method: "GET", path: "/api/v1/info", host: "dash.example.org:8443", header: map[string]string{"Authorization": "Bearer " + token}}, false)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	resp, body = s.send(request{method: "GET", path: "/api/v1/info", host: "dash.example.org:8443"}, false)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "body: %s", body)

	resp, body = s.send(request{method: "GET", path: "/api/v1/info?token=" + token}, false)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	cs := resp.Cookies()
	require.Len(t, cs, 1)
	require.Equal(t, "resh_token", cs[0].Name)
	require.Equal(t, token, cs[0].Value)
	require.True(t, cs[0].HttpOnly)
	require.True(t, cs[0].Secure)
	require.Equal(t, http.SameSiteStrictMode, cs[0].SameSite)
	require.Equal(t, "/", cs[0].Path)

	resp, body = s.send(request{method: "GET", path: "/healthz", header: map[string]string{"Cookie": "resh_token=" + token}}, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ok\n", string(body))
	resp, body = s.send(request{method: "POST", path: "/api/v1/stop", body: `{"confirm":true}`,
		header: map[string]string{"Cookie": "resh_token=" + token}}, false)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", body)
	<-s.stopped
}

func TestMetrics(t *testing.T) {
	m := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("resh_up 1\n")) })
	s := newStack(t, stackOptions{token: "t0k", metrics: m})
	status, _ := s.do("GET", "/metrics", "")
	require.Equal(t, http.StatusUnauthorized, status)
	resp, body := s.send(request{method: "GET", path: "/metrics", header: map[string]string{"Authorization": "Bearer t0k"}}, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "resh_up 1\n", string(body))
}

func TestNewNeedsConfig(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
}

func TestStatusOf(t *testing.T) {
	require.Equal(t, http.StatusInternalServerError, statusOf(errors.New("disk on fire")))
	require.Equal(t, http.StatusUnprocessableEntity, statusOf(fmt.Errorf("reshd: %w x (the executors have: none)", scheduler.ErrNoLanguage)))
	require.Equal(t, http.StatusNotFound, statusOf(fmt.Errorf("x: %w", ErrNoLocal)))
}

// mustBase64 decodes s.
func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64StdDecode(s)
	require.NoError(t, err)
	return b
}
