package reshdcmd

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/connection"
	"resh/proto"
	"resh/store"
)

// query runs one session of a durable jobs' query against addr: it sends
// hello and in (then half-closes stdin), and returns the control
// messages up to the session's end and what came on stdout.
func query(t *testing.T, addr string, hello proto.Hello, in string) (msgs []proto.Type, bodies [][]byte, stdout string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := connection.Dial(ctx, "tcp", addr, nil)
	require.NoError(t, err)
	mux, err := proto.Client(conn)
	require.NoError(t, err)
	defer mux.Close()
	streams := map[string]*yamux.Stream{}
	for _, k := range []string{proto.KindControl, proto.KindStdin, proto.KindStdout, proto.KindStderr} {
		s, err := mux.OpenStream()
		require.NoError(t, err)
		require.NoError(t, proto.WriteMessage(s, proto.TypeOpen, proto.Open{Kind: k}))
		streams[k] = s
	}
	hello.Version = proto.Version
	require.NoError(t, proto.WriteMessage(streams[proto.KindControl], proto.TypeHello, hello))
	_, err = io.WriteString(streams[proto.KindStdin], in)
	require.NoError(t, err)
	require.NoError(t, streams[proto.KindStdin].Close())
	out := make(chan string, 1)
	go func() {
		_ = streams[proto.KindStdout].SetReadDeadline(time.Now().Add(20 * time.Second))
		b, _ := io.ReadAll(streams[proto.KindStdout])
		out <- string(b)
	}()
	ctl := streams[proto.KindControl]
	_ = ctl.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		typ, body, err := proto.ReadMessage(ctl)
		if err != nil {
			break
		}
		msgs, bodies = append(msgs, typ), append(bodies, body)
		if typ == proto.TypeExit || typ == proto.TypeError || typ == proto.TypeJobs {
			break
		}
	}
	_ = mux.Close()
	return msgs, bodies, <-out
}

// A standalone reshd keeps its durable jobs in RESH_HOME/jobs.db and runs
// them on its in-process executor.
func TestStandaloneRunsDurableJobs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RESH_HOME", home)
	_, addr := startReshd(t, 0, "-insecure", "-unsafe-no-sandbox", "-job-retries", "0", "-job-retention", "1h")
	src := "echo hello from a job\n"
	msgs, bodies, out := query(t, addr, proto.Hello{Query: proto.QueryRun, Job: &proto.Job{Lang: "sh", Name: "a.sh", Size: int64(len(src))}}, src)
	require.NotEmpty(t, msgs)
	require.Equal(t, proto.TypeSubmitted, msgs[0], "%s", bodies[0])
	assert.Equal(t, proto.TypeExit, msgs[len(msgs)-1])
	assert.Equal(t, "hello from a job\n", out)
	var e proto.Exit
	require.NoError(t, proto.Decode(bodies[len(bodies)-1], &e))
	assert.Equal(t, proto.Exit{}, e)

	msgs, bodies, _ = query(t, addr, proto.Hello{Query: proto.QueryJob, JobRequest: &proto.JobRequest{ID: 1}}, "")
	require.Equal(t, []proto.Type{proto.TypeJobs}, msgs)
	var list proto.Jobs
	require.NoError(t, proto.Decode(bodies[0], &list))
	assert.Equal(t, "finished", list.Jobs[0].State)

	st, err := store.Open(context.Background(), filepath.Join(home, store.DefaultFile), nil)
	require.NoError(t, err)
	defer st.Close()
	j, err := st.Get(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, store.NoRetries+1, j.MaxRetries, "-job-retries 0: none")
}
