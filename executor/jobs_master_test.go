package executor

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/auth"
	"resh/cluster"
	"resh/proto"
	"resh/server"
)

// TestJobThroughRealMaster runs a durable job from a real master
// (cluster.Master.RunJob, over TLS) on this executor: its output, acks,
// end and release, and its task slot while it runs.
func TestJobThroughRealMaster(t *testing.T) {
	mhome := t.TempDir()
	_, hostKey, _ := ed25519.GenerateKey(nil)
	home, key := executorHome(t)
	ak, ex := filepath.Join(mhome, auth.AuthorizedKeysFile), filepath.Join(mhome, auth.ExecutorsFile)
	require.NoError(t, os.WriteFile(ak, nil, 0o600))
	require.NoError(t, os.WriteFile(ex, auth.AuthorizedLine(auth.PublicKey(key), "executor"), 0o600))
	tcfg, err := auth.MasterTLS(hostKey, ak, ex, cluster.LinkALPN, nil, nil)
	require.NoError(t, err)
	joined := make(chan []cluster.HeldJob, 1)
	master := cluster.NewMaster(cluster.Config{OnJoin: func(_ string, held []cluster.HeldJob) { joined <- held }})
	srv, err := server.Listen("127.0.0.1:0", &server.Config{TLS: tcfg, Master: master, Executors: true})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
		assert.NoError(t, <-served)
	}()
	exe := startExecutor(t, Config{Master: srv.Addr().String(), Home: home, Name: "worker", MaxTasks: 1}, hooks{languages: func() []string { return []string{"python", "sh"} }})
	select {
	case held := <-joined:
		assert.Empty(t, held)
	case <-time.After(testTimeout):
		t.Fatal("the executor did not join")
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	src := "import sys\nprint(sys.stdin.read().upper(), end='')\nprint('x' * 100000, file=sys.stderr)\n"
	c, err := master.RunJob(ctx, cluster.JobRun{ID: 3, Lease: 1, Lang: "python", Name: "up.py"}, []byte(src), []byte("shout"))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "worker", c.Executor())
	var out [3]strings.Builder
	var end *cluster.JobEnd
	for end == nil {
		o, e, err := c.Next()
		require.NoError(t, err)
		if o != nil {
			require.Equal(t, int64(out[o.Stream].Len()), o.Offset, "no gap, no duplicate")
			out[o.Stream].Write(o.Data)
			require.NoError(t, c.Ack(int64(out[1].Len()), int64(out[2].Len())))
		}
		end = e
	}
	assert.Equal(t, "SHOUT", out[cluster.JobStdout].String())
	assert.Equal(t, strings.Repeat("x", 100000)+"\n", out[cluster.JobStderr].String())
	assert.Equal(t, proto.VerdictOK, end.Verdict.Verdict)
	assert.Equal(t, "worker", end.Verdict.Executor)
	require.NoError(t, c.Release())
	require.Eventually(t, func() bool {
		infos := master.Executors()
		return len(infos) == 1 && infos[0].Tasks == 0 && infos[0].State == proto.StateUp
	}, testTimeout, 5*time.Millisecond)
	_, err = master.ResumeJob("worker", cluster.JobResume{ID: 3, Lease: 1})
	require.ErrorIs(t, err, cluster.ErrUnknownJob, "released: forgotten")
	require.NoError(t, exe.stop(t))
}
