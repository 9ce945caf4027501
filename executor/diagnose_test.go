package executor

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"resh/auth"
)

// TestJoinTLS: over TLS, an executor whose key is in the master's
// executors file joins, and pins the master's key in its known_hosts.
func TestJoinTLS(t *testing.T) {
	home, key := executorHome(t)
	m := newMaster(t, masterOptions{executors: []ed25519.PrivateKey{key}})
	ex := startExecutor(t, Config{Master: m.addr(), Home: home}, hooks{sessions: newFakeSessions()})
	l := m.link()
	assert.Equal(t, "test-exec", l.join.Name)
	ex.logs.wait(t, "joined the master", 1)
	ex.logs.wait(t, "master key pinned: new host "+m.addr(), 1)
	kh, err := os.ReadFile(filepath.Join(home, auth.KnownHostsFile))
	require.NoError(t, err)
	assert.Contains(t, string(kh), "["+strings.Replace(m.addr(), ":", "]:", 1))
	require.NoError(t, ex.stop(t))
	l.waitLeave(t)
}

// TestStrangerExecutor: a key that is not in the master's executors file
// is refused; the executor says how to admit it, and keeps trying.
func TestStrangerExecutor(t *testing.T) {
	home, key := executorHome(t)
	_, other, _ := ed25519.GenerateKey(nil)
	m := newMaster(t, masterOptions{executors: []ed25519.PrivateKey{other}})
	ex := startExecutor(t, Config{Master: m.addr(), Home: home, Name: "stranger"}, hooks{sessions: newFakeSessions()})
	pub := auth.PublicKey(key)
	line := ex.logs.wait(t, "the master does not accept this executor's key "+auth.Fingerprint(pub)+": add this line to RESH_HOME/executors on the master: ", 2)
	assert.Contains(t, line, strings.TrimSpace(string(auth.AuthorizedLine(pub, "stranger"))))
	assert.Contains(t, line, "master="+m.addr())
	require.NoError(t, ex.stop(t))
}

// TestNotAMaster: a reshd that is not a master (no executors, no link
// protocol) is named as such, and tried again.
func TestNotAMaster(t *testing.T) {
	home, key := executorHome(t)
	m := newMaster(t, masterOptions{plain: true, executors: []ed25519.PrivateKey{key}})
	ex := startExecutor(t, Config{Master: m.addr(), Home: home}, hooks{sessions: newFakeSessions()})
	ex.logs.wait(t, m.addr()+" is a reshd but not a master (-master)", 2)
	require.NoError(t, ex.stop(t))
}

// TestMasterKeyChanged: a master whose key is not the one known_hosts
// pins is not joined, and Run returns: retrying cannot mend it.
func TestMasterKeyChanged(t *testing.T) {
	home, key := executorHome(t)
	m := newMaster(t, masterOptions{executors: []ed25519.PrivateKey{key}})
	_, other, _ := ed25519.GenerateKey(nil)
	host := "[" + strings.Replace(m.addr(), ":", "]:", 1)
	require.NoError(t, os.WriteFile(filepath.Join(home, auth.KnownHostsFile),
		[]byte(host+" "+string(ssh.MarshalAuthorizedKey(auth.PublicKey(other)))), 0o600))
	ex := startExecutor(t, Config{Master: m.addr(), Home: home}, hooks{sessions: newFakeSessions()})
	err := ex.result(t)
	var changed *auth.HostKeyChangedError
	require.ErrorAs(t, err, &changed)
	assert.Equal(t, auth.Fingerprint(auth.PublicKey(other)), changed.Known)
	ex.logs.wait(t, "refusing the master's key", 1)
}

// TestMasterUnknownKnownOnly: with KnownOnly, an unknown master is not
// joined either.
func TestMasterUnknownKnownOnly(t *testing.T) {
	home, key := executorHome(t)
	m := newMaster(t, masterOptions{executors: []ed25519.PrivateKey{key}})
	ex := startExecutor(t, Config{Master: m.addr(), Home: home, KnownOnly: true}, hooks{sessions: newFakeSessions()})
	err := ex.result(t)
	var unknown *auth.UnknownHostError
	require.ErrorAs(t, err, &unknown)
	assert.Contains(t, err.Error(), "unknown host "+m.addr())
}

// TestInsecureAgainstTLS: an -insecure executor and a TLS master do not
// agree; it says so, and tries again.
func TestInsecureAgainstTLS(t *testing.T) {
	m := newMaster(t, masterOptions{})
	ex := startExecutor(t, Config{Master: m.addr(), Insecure: true}, hooks{sessions: newFakeSessions()})
	ex.logs.wait(t, "the master requires TLS: join it without -insecure", 2)
	require.NoError(t, ex.stop(t))
}
