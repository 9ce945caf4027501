package executor

import (
	"context"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/auth"
	"resh/cluster"
	"resh/proto"
	"resh/server"
)

// TestWithRealMaster joins a real master (package server with a
// cluster.Master, as reshd -master) over TLS, and runs a client's session
// through it on this executor.
func TestWithRealMaster(t *testing.T) {
	mhome := t.TempDir()
	_, hostKey, _ := ed25519.GenerateKey(nil)
	_, clientKey, _ := ed25519.GenerateKey(nil)
	home, key := executorHome(t)
	ak, ex := filepath.Join(mhome, auth.AuthorizedKeysFile), filepath.Join(mhome, auth.ExecutorsFile)
	require.NoError(t, os.WriteFile(ak, auth.AuthorizedLine(auth.PublicKey(clientKey), "client"), 0o600))
	require.NoError(t, os.WriteFile(ex, auth.AuthorizedLine(auth.PublicKey(key), "executor"), 0o600))
	tcfg, err := auth.MasterTLS(hostKey, ak, ex, cluster.LinkALPN, nil, nil)
	require.NoError(t, err)
	master := cluster.NewMaster(cluster.Config{Name: "the-master"})
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
	addr := srv.Addr().String()

	exe := startExecutor(t, Config{Master: addr, Home: home, Name: "worker", MaxTasks: 2}, hooks{})
	exe.logs.wait(t, "joined the master", 1)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ctcfg, err := auth.ClientTLS(clientKey, filepath.Join(t.TempDir(), auth.KnownHostsFile), addr, false, io.Discard)
	require.NoError(t, err)
	conn, err := auth.Dial(ctx, "tcp", addr, nil, ctcfg)
	require.NoError(t, err)
	mux, err := proto.Client(conn)
	require.NoError(t, err)
	defer func() { _ = mux.Close() }()
	var streams [4]io.ReadWriteCloser
	for i, kind := range []string{proto.KindControl, proto.KindStdin, proto.KindStdout, proto.KindStderr} {
		st, err := mux.OpenStream()
		require.NoError(t, err)
		_ = st.SetDeadline(time.Now().Add(testTimeout))
		require.NoError(t, proto.WriteMessage(st, proto.TypeOpen, proto.Open{Kind: kind}))
		streams[i] = st
	}
	control, stdin, stdout := streams[0], streams[1], streams[2]
	require.NoError(t, proto.WriteMessage(control, proto.TypeHello, proto.Hello{Version: proto.Version, Command: "echo via the master", On: "worker"}))
	var started proto.Started
	require.NoError(t, proto.Expect(control, proto.TypeStarted, &started))
	_ = stdin.Close()
	out, err := io.ReadAll(stdout)
	require.NoError(t, err)
	assert.Equal(t, "via the master\n", string(out))
	var exit proto.Exit
	require.NoError(t, proto.Expect(control, proto.TypeExit, &exit))
	assert.Equal(t, 0, exit.Code)

	infos := master.Executors()
	require.Len(t, infos, 1)
	assert.Equal(t, "worker", infos[0].Name)
	assert.Equal(t, 2, infos[0].MaxTasks)

	require.NoError(t, exe.stop(t))
}
