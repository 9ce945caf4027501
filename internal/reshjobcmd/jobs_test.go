package reshjobcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/client"
	"resh/proto"
)

// submit prints the id once the job is stored, with its stdin.
func TestSubmit(t *testing.T) {
	var hello proto.Hello
	var stdin string
	f := startFake(t, func(s *fakeSession) {
		hello = s.hello
		stdin = s.stdinRest()
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 314})
	})
	code, stdout, stderr := runJob(t, f.port, "the input\n", "submit", "-time", "1s", program(t, "a.py", pySource), "arg")
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, "314\n", stdout)
	assert.Empty(t, stderr)
	assert.Equal(t, proto.QuerySubmit, hello.Query)
	assert.Equal(t, proto.Job{Lang: "python", Name: "a.py", Size: int64(len(pySource)), Args: []string{"arg"}, Limits: proto.JobLimits{WallMS: 1000}}, *hello.Job)
	assert.Equal(t, "the input\n", stdin)
}

// attach asks for the job from -from's offsets and exits as the job did.
func TestAttachFrom(t *testing.T) {
	var req proto.JobRequest
	f := startFake(t, func(s *fakeSession) {
		req = *s.hello.JobRequest
		assert.Empty(t, s.stdinRest(), "attach sends nothing on stdin")
		s.finish("lo\n", "rr\n", proto.Verdict{Verdict: proto.VerdictRuntimeError, Status: 4}, proto.Exit{Code: 4})
	})
	code, stdout, stderr := runJob(t, f.port, "not read", "attach", "-from", "3:1", "9")
	assert.Equal(t, 4, code)
	assert.Equal(t, "lo\n", stdout)
	assert.Equal(t, "rr\nreshjob: RUNTIME_ERROR (exit status 4)\n", stderr)
	assert.Equal(t, proto.JobRequest{ID: 9, Stdout: 3, Stderr: 1}, req)
}

func TestAttachNoJob(t *testing.T) {
	f := startFake(t, func(s *fakeSession) {
		s.send(proto.TypeError, proto.Error{Message: "reshd: no job 9"})
	})
	code, stdout, stderr := runJob(t, f.port, "", "attach", "9")
	assert.Equal(t, 255, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "reshjob: reshd: no job 9\n", stderr)
}

// output is n bytes that differ at every offset modulo a prime, so that a
// gap or a duplicate shows.
func output(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i+int(seed))%23)
	}
	b[n-1] = '\n'
	return string(b)
}

// When the connection is cut (reshd killed) in the middle of the output,
// run attaches again in a new session from the bytes it wrote: no gap, no
// duplicate. The cut loses bytes in flight, which the new session sends
// again; it comes at several points of the output, once reshjob has
// written a first byte (so that it has the job's id).
func TestRunReattaches(t *testing.T) {
	const size = 1 << 20
	out, errs := output(size, 0), output(size/4, 7)
	for _, cut := range []int{1, 4096, size / 3, size} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			var mu sync.Mutex
			var reqs []proto.JobRequest
			stdout := &firstByte{got: make(chan struct{})}
			f := startFake(t, func(s *fakeSession) {
				if s.n == 0 {
					assert.Equal(t, proto.QueryRun, s.hello.Query)
					s.stdinRest()
					s.send(proto.TypeSubmitted, proto.Submitted{ID: 77})
					s.send(proto.TypeJobState, proto.JobState{State: "running", Executor: "e1", Attempt: 1})
					s.write(out[:cut], errs[:min(cut, len(errs))])
					<-stdout.got
					s.cut()
					return
				}
				req := *s.hello.JobRequest
				mu.Lock()
				reqs = append(reqs, req)
				mu.Unlock()
				assert.Equal(t, proto.QueryAttach, s.hello.Query)
				s.send(proto.TypeJobState, proto.JobState{State: "running", Executor: "e1", Attempt: 1})
				if req.Stdout > int64(len(out)) || req.Stderr > int64(len(errs)) {
					t.Errorf("attach from %+v: past the output", req)
					return
				}
				s.finish(out[req.Stdout:], errs[req.Stderr:], proto.Verdict{Verdict: proto.VerdictOK}, proto.Exit{})
			})
			var stderr bytes.Buffer
			env := client.Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &stderr,
				Environ: []string{"HOME=" + t.TempDir()}, Signals: make(chan os.Signal)}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code := Run(ctx, []string{"-insecure", "-p", strconv.Itoa(f.port), "127.0.0.1", "run", program(t, "a.py", pySource)}, env)
			assert.Equal(t, 0, code, "stderr %q", stderr.String())
			assert.True(t, stdout.b.String() == out, "stdout: %d bytes, want %d", stdout.b.Len(), len(out))
			assert.True(t, stderr.String() == errs, "stderr: %d bytes, want %d", stderr.Len(), len(errs))
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, reqs, 1)
			assert.EqualValues(t, 77, reqs[0].ID)
			assert.LessOrEqual(t, reqs[0].Stdout, int64(cut))
			assert.GreaterOrEqual(t, reqs[0].Stdout, int64(1))
		})
	}
}

// firstByte is a buffer that closes got at its first write.
type firstByte struct {
	b    bytes.Buffer
	got  chan struct{}
	once sync.Once
}

func (w *firstByte) Write(p []byte) (int, error) {
	n, err := w.b.Write(p)
	w.once.Do(func() { close(w.got) })
	return n, err
}

// When reshd does not come back within -give-up, run says how to attach
// again, from where it stopped, and exits 255.
func TestRunLost(t *testing.T) {
	var f *fake
	f = startFake(t, func(s *fakeSession) {
		if s.n > 0 {
			s.cut() // accepted, then lost: no progress
			return
		}
		s.stdinRest()
		s.send(proto.TypeSubmitted, proto.Submitted{ID: 8})
		s.write("12345", "ab")
		// Closed (drained: every byte written arrives), then refused.
		_ = s.conn.Close()
		f.ln.Close()
	})
	code, stdout, stderr := runJobWith(t, f.port, []string{"-give-up", "300ms"}, make(chan os.Signal), "", "run", program(t, "a.py", pySource))
	assert.Equal(t, 255, code)
	assert.Equal(t, "12345", stdout)
	assert.Equal(t, fmt.Sprintf("ab\nreshjob: lost the connection to 127.0.0.1; job 8 goes on: reshjob -p %d -insecure 127.0.0.1 attach -from 5:2 8\n", f.port), stderr)
}

func TestLs(t *testing.T) {
	var req proto.JobRequest
	jobs := []proto.JobInfo{
		{ID: 3, Owner: insecureOwner, State: "running", Lang: "python", Name: "a.py", Executor: "e1", Submitted: time.Now().Add(-90 * time.Second).UTC().Format(time.RFC3339)},
		{ID: 2, Owner: insecureOwner, State: "queued", Lang: "c", Submitted: time.Now().UTC().Format(time.RFC3339)},
	}
	f := startFake(t, func(s *fakeSession) {
		req = *s.hello.JobRequest
		s.send(proto.TypeJobs, proto.Jobs{Jobs: jobs})
	})
	code, stdout, stderr := runJob(t, f.port, "", "ls", "-state", "queued")
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, proto.JobRequest{State: "queued", All: true}, req)
	lines := strings.Split(stdout, "\n")
	require.Len(t, lines, 4, "%q", stdout)
	assert.Regexp(t, `^ID +STATE +LANG +NAME +EXECUTOR +SUBMITTED +DURATION +VERDICT$`, lines[0], "no OWNER: every job is the caller's")
	assert.Regexp(t, `^3 +running +python +a\.py +e1 +1m3\ds +- +-$`, lines[1])
	assert.Regexp(t, `^2 +queued +c +- +- +(\d+ms|\d\.\ds) +- +-$`, lines[2])

	f = startFake(t, func(s *fakeSession) {
		s.send(proto.TypeJobs, proto.Jobs{Jobs: jobs})
	})
	code, stdout, _ = runJob(t, f.port, "", "ls", "-json")
	assert.Equal(t, 0, code)
	var got []proto.JobInfo
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	assert.Equal(t, jobs, got)

	f = startFake(t, func(s *fakeSession) { s.send(proto.TypeJobs, proto.Jobs{}) })
	code, stdout, _ = runJob(t, f.port, "", "ls", "-json")
	assert.Equal(t, 0, code)
	assert.Equal(t, "[]\n", stdout)
}

func TestWriteTable(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	jobs := []proto.JobInfo{
		{ID: 12, Owner: "SHA256:me", State: "finished", Lang: "c", Name: "x\ty.c", Executor: "e2", Submitted: "2026-12-07T11:00:00Z",
			Started: "2026-12-07T11:00:01Z", Ended: "2026-12-07T11:02:01Z", DurationMS: 120000, Verdict: "OK"},
		{ID: 9, Owner: "SHA256:other", State: "running", Lang: "python", Executor: "e1", Submitted: "2026-12-05T11:00:00Z", Started: "2026-12-07T11:59:58.5Z"},
	}
	var b strings.Builder
	require.NoError(t, WriteTable(&b, jobs, "SHA256:me", now))
	assert.Equal(t, ""+
		"ID  OWNER         STATE     LANG    NAME   EXECUTOR  SUBMITTED  DURATION  VERDICT\n"+
		"12  SHA256:me     finished  c       x?y.c  e2        1h0m       2m0s      OK\n"+
		"9   SHA256:other  running   python  -      e1        2d1h       1.5s      -\n", b.String())
	b.Reset()
	require.NoError(t, WriteTable(&b, nil, "SHA256:me", now))
	assert.Equal(t, "ID  STATE  LANG  NAME  EXECUTOR  SUBMITTED  DURATION  VERDICT\n", b.String())
}

func TestStatus(t *testing.T) {
	j := proto.JobInfo{ID: 4, Owner: "insecure", State: "failed", Lang: "python", Name: "a.py", Args: []string{"x", "two words"},
		Executor: "e1", Attempts: 2, Submitted: "2026-12-07T11:00:00Z", Started: "2026-12-07T11:00:01Z", Ended: "2026-12-07T11:00:03Z",
		DurationMS: 2000, Verdict: "EXECUTOR_LOST", Exit: &proto.Exit{Code: 120}, Reason: "executor e1 lost", StdoutLen: 10, StderrLen: 0}
	var req proto.JobRequest
	f := startFake(t, func(s *fakeSession) {
		req = *s.hello.JobRequest
		s.send(proto.TypeJobs, proto.Jobs{Jobs: []proto.JobInfo{j}})
	})
	code, stdout, stderr := runJob(t, f.port, "", "status", "4")
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, proto.JobRequest{ID: 4}, req)
	assert.Equal(t, ""+
		"id:        4\n"+
		"owner:     insecure\n"+
		"state:     failed\n"+
		"lang:      python\n"+
		"name:      a.py\n"+
		"args:      x \"two words\"\n"+
		"executor:  e1\n"+
		"attempts:  2\n"+
		"submitted: 2026-12-07T11:00:00Z\n"+
		"started:   2026-12-07T11:00:01Z\n"+
		"ended:     2026-12-07T11:00:03Z\n"+
		"duration:  2.0s\n"+
		"verdict:   EXECUTOR_LOST\n"+
		"exit:      code 120\n"+
		"reason:    executor e1 lost\n"+
		"stdout:    10 bytes\n"+
		"stderr:    0 bytes\n", stdout)

	f = startFake(t, func(s *fakeSession) { s.send(proto.TypeJobs, proto.Jobs{Jobs: []proto.JobInfo{j}}) })
	code, stdout, _ = runJob(t, f.port, "", "status", "-json", "4")
	assert.Equal(t, 0, code)
	var got proto.JobInfo
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	assert.Equal(t, j, got)

	// An answer about another job is the server's fault.
	f = startFake(t, func(s *fakeSession) { s.send(proto.TypeJobs, proto.Jobs{Jobs: []proto.JobInfo{{ID: 5}}}) })
	code, _, stderr = runJob(t, f.port, "", "status", "4")
	assert.Equal(t, 255, code)
	assert.Contains(t, stderr, "reshjob: protocol error")
}

func TestCancel(t *testing.T) {
	var req proto.JobRequest
	f := startFake(t, func(s *fakeSession) {
		req = *s.hello.JobRequest
		assert.Equal(t, proto.QueryCancel, s.hello.Query)
		s.send(proto.TypeJobs, proto.Jobs{Jobs: []proto.JobInfo{{ID: 6, State: "cancelled"}}})
	})
	code, stdout, stderr := runJob(t, f.port, "", "cancel", "6")
	assert.Equal(t, 0, code, "stderr %q", stderr)
	assert.Equal(t, "job 6 cancelled\n", stdout)
	assert.Equal(t, proto.JobRequest{ID: 6}, req)

	for _, msg := range []string{"reshd: no job 6", "reshd: job 6 has ended (finished)"} {
		f = startFake(t, func(s *fakeSession) { s.send(proto.TypeError, proto.Error{Message: msg}) })
		code, stdout, stderr = runJob(t, f.port, "", "cancel", "6")
		assert.Equal(t, 255, code)
		assert.Empty(t, stdout)
		assert.Equal(t, "reshjob: "+msg+"\n", stderr)
	}
}

// Without -v, on a terminal, a job is said to be queued only once it has
// waited the delay, and then where it runs.
func TestStateLine(t *testing.T) {
	var b strings.Builder
	l := stateLine{w: func() io.Writer { return &b }, id: 3, term: true, delay: time.Hour}
	l.show(proto.JobState{State: "queued"})
	require.NotNil(t, l.notice)
	l.show(proto.JobState{State: "running", Executor: "e1", Attempt: 1})
	assert.Nil(t, l.notice)
	assert.Empty(t, b.String(), "running within the notice time: nothing said")
	l.delay = time.Millisecond
	l.show(proto.JobState{State: "queued"})
	<-l.notice
	l.late()
	l.show(proto.JobState{State: "queued"})
	l.show(proto.JobState{State: "running", Executor: "e2", Attempt: 2})
	assert.Equal(t, "reshjob: job 3 queued\nreshjob: job 3 running on e2 (attempt 2)\n", b.String())
	l.stop()

	b.Reset()
	off := stateLine{w: func() io.Writer { return &b }, id: 3}
	off.show(proto.JobState{State: "queued"})
	assert.Nil(t, off.notice, "off a terminal without -v: nothing")
}

// Durations and ages: milliseconds under a second, tenths under ten
// seconds, then as resh's tables write them.
func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                          "0ms",
		35 * time.Millisecond:      "35ms",
		999 * time.Millisecond:     "999ms",
		time.Second:                "1.0s",
		1500 * time.Millisecond:    "1.5s",
		9940 * time.Millisecond:    "9.9s",
		10 * time.Second:           "10s",
		61 * time.Second:           "1m1s",
		-time.Second:               "0s",
		49*time.Hour + time.Minute: "2d1h",
	} {
		assert.Equal(t, want, age(d), "%v", d)
	}
}
