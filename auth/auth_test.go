package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"resh/connection"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

func TestHome(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h")
	t.Setenv("RESH_HOME", dir)
	got, err := Home()
	require.NoError(t, err)
	assert.Equal(t, dir, got)
	assert.Equal(t, os.FileMode(0o700), mode(t, dir))
	t.Setenv("RESH_HOME", "")
	t.Setenv("HOME", t.TempDir())
	got, err = Home()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(os.Getenv("HOME"), ".resh"), got, "without RESH_HOME")

	// A key directory that cannot be made: said in the user's terms.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = HomeDir(file)
	assert.EqualError(t, err, "cannot create resh's key directory "+file+": not a directory (set RESH_HOME to another directory)")
}

func TestIdentityUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none", IdentityFile)
	_, err := LoadIdentity(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.EqualError(t, err, "cannot read your key "+missing+": no such file or directory")
	_, _, err = LoadOrCreateIdentity(missing)
	assert.EqualError(t, err, "cannot create "+missing+": no such file or directory")
}

func TestIdentityCreatedThenReread(t *testing.T) {
	path := filepath.Join(t.TempDir(), IdentityFile)
	k1, created, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	require.True(t, created, "the first call creates the key")
	assert.Equal(t, os.FileMode(0o600), mode(t, path))
	assert.Equal(t, os.FileMode(0o644), mode(t, path+".pub"))
	k2, created, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	assert.False(t, created, "the second call reads it")
	assert.True(t, k1.Equal(k2), "the same key")
	pubLine, _ := os.ReadFile(path + ".pub")
	pub, comment, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	require.NoError(t, err, ".pub %q", pubLine)
	assert.Equal(t, PublicKey(k1).Marshal(), pub.Marshal())
	assert.Contains(t, comment, "@", "a user@host comment")
	// ssh-keygen reads what we wrote.
	priv, _ := os.ReadFile(path)
	_, err = ssh.ParsePrivateKey(priv)
	assert.NoError(t, err, "the written key parses as OpenSSH")
}

func TestIdentityConcurrentCreation(t *testing.T) {
	path := filepath.Join(t.TempDir(), IdentityFile)
	keys := make([]ed25519.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, _, err := LoadOrCreateIdentity(path)
			assert.NoError(t, err)
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		require.True(t, k.Equal(keys[0]), "concurrent creators got different keys")
	}
}

func TestSSHKeygenKeyAccepted(t *testing.T) {
	k, created, err := LoadOrCreateIdentity("testdata/ed25519_sshkeygen")
	require.NoError(t, err)
	assert.False(t, created)
	pubLine, _ := os.ReadFile("testdata/ed25519_sshkeygen.pub")
	pub, _, _, _, _ := ssh.ParseAuthorizedKey(pubLine)
	assert.Equal(t, pub.Marshal(), PublicKey(k).Marshal(), "the loaded key matches its .pub")
}

func TestBadKeysRefused(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage")
	_ = os.WriteFile(garbage, []byte("hello\n"), 0o600)
	for _, c := range []struct{ path, want string }{
		{"testdata/rsa", "is a RSA key; resh needs an ed25519 key"},
		{"testdata/ed25519_encrypted", "protected by a passphrase"},
		{garbage, "is not an OpenSSH private key"},
	} {
		_, _, err := LoadOrCreateIdentity(c.path)
		require.Error(t, err, c.path)
		assert.Contains(t, err.Error(), c.path+" ")
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "\n")
		assert.NotContains(t, err.Error(), "auth:")
	}
}

func TestReadAuthorizedKeys(t *testing.T) {
	a, _, _ := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "a"))
	b, _, _ := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "b"))
	path := filepath.Join(t.TempDir(), AuthorizedKeysFile)
	content := "# comment\n\n" + string(AuthorizedLine(PublicKey(a), "alice@x")) +
		"ssh-ed25519 not-base64 broken\n" +
		`from="10.0.0.1" ` + string(AuthorizedLine(PublicKey(b), ""))
	_ = os.WriteFile(path, []byte(content), 0o600)
	keys, bad, err := ReadAuthorizedKeys(path)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, PublicKey(a).Marshal(), keys[0].Marshal())
	assert.Equal(t, PublicKey(b).Marshal(), keys[1].Marshal())
	require.Len(t, bad, 1)
	assert.Equal(t, path+" line 4 is not an OpenSSH public key", bad[0].Error())
	missing := filepath.Join(t.TempDir(), "none")
	_, _, err = ReadAuthorizedKeys(missing)
	assert.EqualError(t, err, "cannot read "+missing+": no such file or directory")
}

func TestKnownHosts(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownHostsFile)
	k1, _, _ := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "k1"))
	k2, _, _ := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "k2"))
	var out bytes.Buffer

	// Strict: an unknown host is refused and nothing is recorded.
	err := CheckKnownHost(path, "127.0.0.1:4200", PublicKey(k1), true, &out)
	var unknown *UnknownHostError
	require.ErrorAs(t, err, &unknown, "strict unknown")
	assert.Empty(t, out.String())
	// Trust on first use.
	require.NoError(t, CheckKnownHost(path, "127.0.0.1:4200", PublicKey(k1), false, &out))
	assert.Equal(t, "resh: new host 127.0.0.1:4200, key "+Fingerprint(PublicKey(k1))+" recorded in "+path+"\n", out.String())
	data, _ := os.ReadFile(path)
	assert.True(t, strings.HasPrefix(string(data), "[127.0.0.1]:4200 ssh-ed25519 "), "known_hosts %q: an OpenSSH line for [127.0.0.1]:4200", data)
	// Another port of the same host is another host.
	_ = CheckKnownHost(path, "127.0.0.1:4300", PublicKey(k2), false, io.Discard)
	out.Reset()
	// Match, also in strict mode, quietly.
	for _, strict := range []bool{false, true} {
		require.NoError(t, CheckKnownHost(path, "127.0.0.1:4200", PublicKey(k1), strict, &out), "strict %v", strict)
		assert.Empty(t, out.String(), "strict %v", strict)
	}
	// Changed key: refused, both fingerprints and the line to remove.
	before, _ := os.ReadFile(path)
	err = CheckKnownHost(path, "127.0.0.1:4200", PublicKey(k2), false, &out)
	var changed *HostKeyChangedError
	require.ErrorAs(t, err, &changed)
	assert.Equal(t, 1, changed.Line)
	assert.Empty(t, out.String())
	for _, s := range []string{Fingerprint(PublicKey(k1)), Fingerprint(PublicKey(k2)), "remove line 1 of " + path, "HAS CHANGED"} {
		assert.Contains(t, err.Error(), s)
	}
	after, _ := os.ReadFile(path)
	assert.Equal(t, string(before), string(after), "known_hosts unchanged by a refusal")

	// A known_hosts that cannot be opened.
	dir := filepath.Join(t.TempDir(), "none", KnownHostsFile)
	err = CheckKnownHost(dir, "127.0.0.1:4200", PublicKey(k1), false, &out)
	assert.EqualError(t, err, "cannot open your known_hosts "+dir+": no such file or directory")
}

func TestLimiterTarpit(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter()
	l.now = func() time.Time { return now }
	l.after = func(time.Duration, func()) *time.Timer { return time.NewTimer(time.Hour) }
	refuse := func(host string) time.Duration {
		d, _ := l.fail(host, "SHA256:k")
		if d > 0 {
			l.untarpit(host)
		}
		return d
	}
	wants := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for i, want := range wants {
		require.Equal(t, want, refuse("10.0.0.1"), "refusal %d", i+1)
	}
	require.Zero(t, refuse("10.0.0.2"), "another address's first refusal is not delayed")
	now = now.Add(59 * time.Second)
	require.Equal(t, 5*time.Second, refuse("10.0.0.1"), "59s later")
	now = now.Add(time.Minute)
	require.Zero(t, refuse("10.0.0.1"), "a minute after the last failure")
	// At most limitTarpits refusals of one address wait at once; the
	// others are refused at once.
	waiting := 0
	for range 3 * limitTarpits {
		if d, _ := l.fail("10.0.0.1", "SHA256:k"); d > 0 {
			waiting++
		}
	}
	require.Equal(t, limitTarpits, waiting, "refusals waiting at once")
	for range waiting {
		l.untarpit("10.0.0.1")
	}
	require.Equal(t, limitMax, refuse("10.0.0.1"), "after the waits ended")
	require.Zero(t, l.tarpits, "tarpits counted after all ended")
	// The map is pruned and bounded.
	for i := range limitEntries + 10 {
		refuse(net.IPv4(10, 1, byte(i>>8), byte(i)).String())
	}
	require.LessOrEqual(t, l.size(), limitEntries)
	l.flush()
	now = now.Add(2 * time.Minute)
	refuse("10.0.0.3")
	require.Equal(t, 1, l.size(), "entries after they all expired")
}

// Refusals are logged once per key and address, then summed up: a stranger
// hammering does not flood the log.
func TestLimiterLogsWithoutFlooding(t *testing.T) {
	var logs bytes.Buffer
	l := NewLimiter()
	l.setLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	var summary func()
	l.after = func(d time.Duration, f func()) *time.Timer {
		assert.Equal(t, limitSummary, d, "when the summary comes")
		summary = f
		return time.NewTimer(time.Hour)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no waiting in this test
	for i := range 1000 {
		l.refuse(ctx, "10.0.0.1", "SHA256:a", "refused", "i", i)
		l.refuse(ctx, "10.0.0.1", "SHA256:b", "refused", "i", i)
		l.refuse(ctx, "10.0.0.2", "SHA256:a", "refused", "i", i)
	}
	require.Equal(t, 3, strings.Count(logs.String(), "level=WARN"), "one line per key and address:\n%s", logs.String())
	require.NotNil(t, summary, "a summary is scheduled")
	logs.Reset()
	summary()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "host=10.0.0.1 refusals=1998 keys=2")
	assert.Contains(t, lines[1], "host=10.0.0.2 refusals=999 keys=1")
	logs.Reset()
	summary = nil
	l.refuse(ctx, "10.0.0.1", "SHA256:a", "refused")
	assert.Empty(t, logs.String(), "a known key is not logged again")
	assert.NotNil(t, summary, "but counted")
}

// tlsPair is a server and client set up in a RESH_HOME-like directory.
type tlsPair struct {
	dir                string
	hostKey, clientKey ed25519.PrivateKey
	limiter            *Limiter
	logs               *bytes.Buffer
	logMu              *sync.Mutex
}

func newPair(t *testing.T, authorize bool) *tlsPair {
	t.Helper()
	p := &tlsPair{dir: t.TempDir(), limiter: NewLimiter(), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	p.hostKey, _, _ = LoadOrCreateIdentity(filepath.Join(p.dir, HostKeyFile))
	p.clientKey, _, _ = LoadOrCreateIdentity(filepath.Join(p.dir, IdentityFile))
	other, _, _ := LoadOrCreateIdentity(filepath.Join(p.dir, "other"))
	auth := PublicKey(other)
	if authorize {
		auth = PublicKey(p.clientKey)
	}
	_, err := EnsureAuthorizedKeys(filepath.Join(p.dir, AuthorizedKeysFile), auth, "")
	require.NoError(t, err)
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *tlsPair) log() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.logs.String()
}

// exchange runs one TLS connection over loopback: the client writes
// "ping" and reads the server's reply. It returns the client's and the
// server's errors.
func (p *tlsPair) exchange(t *testing.T, hostKey ed25519.PrivateKey, strict bool, out io.Writer) (clientErr, serverErr error) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(lockedWriter{p.logMu, p.logs}, nil))
	scfg, err := ServerTLS(hostKey, filepath.Join(p.dir, AuthorizedKeysFile), logger, p.limiter)
	require.NoError(t, err)
	ln, err := connection.Listen("tcp", "127.0.0.1:0", &connection.Config{SecureAbove: true})
	require.NoError(t, err)
	defer ln.Close()
	srvDone := make(chan error, 1)
	go func() {
		acc, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tc, err := Server(ctx, acc, scfg)
		if err != nil {
			srvDone <- err
			return
		}
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil {
			srvDone <- err
			return
		}
		_, err = tc.Write([]byte("pong"))
		srvDone <- err
	}()
	ccfg, err := ClientTLS(p.clientKey, filepath.Join(p.dir, KnownHostsFile), "127.0.0.1:4200", strict, out)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, "tcp", ln.Addr().String(), nil, ccfg)
	if err != nil {
		_ = ln.Close()
		return err, <-srvDone
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		// A refusal may close the session before the write: its alert
		// waits to be read.
		if _, rerr := conn.Read(make([]byte, 1)); rerr != nil && Refusal(rerr, p.clientKey) != nil {
			err = rerr
		}
		return err, <-srvDone
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(conn, buf)
	if err == nil && string(buf) != "pong" {
		err = errors.New("reply " + string(buf))
	}
	return err, <-srvDone
}

func TestTLSAuthorizedClient(t *testing.T) {
	p := newPair(t, true)
	var out bytes.Buffer
	cerr, serr := p.exchange(t, p.hostKey, false, &out)
	require.NoError(t, cerr, "client")
	require.NoError(t, serr, "server")
	assert.Contains(t, out.String(), "resh: new host 127.0.0.1:4200, key "+Fingerprint(PublicKey(p.hostKey)), "first contact")
	out.Reset()
	cerr, serr = p.exchange(t, p.hostKey, true, &out)
	require.NoError(t, cerr, "second contact: client")
	require.NoError(t, serr, "second contact: server")
	assert.Empty(t, out.String(), "second contact")
}

func TestTLSStrangerRefused(t *testing.T) {
	p := newPair(t, false)
	cerr, serr := p.exchange(t, p.hostKey, false, io.Discard)
	var na *NotAuthorizedError
	require.ErrorAs(t, Refusal(cerr, p.clientKey), &na, "client error %v", cerr)
	assert.Equal(t, Fingerprint(PublicKey(p.clientKey)), na.Fingerprint)
	assert.EqualError(t, na, "not authorized: the server does not accept key "+Fingerprint(PublicKey(p.clientKey)))
	require.Error(t, serr)
	assert.Contains(t, serr.Error(), "is not in authorized_keys")
	logs := p.log()
	for _, s := range []string{"level=WARN", Fingerprint(PublicKey(p.clientKey)), "addr=127.0.0.1:"} {
		assert.Contains(t, logs, s, "the server log")
	}
	// The next refusal from that address waits; an authorized key from
	// the same address does not, however many failed there.
	start := time.Now()
	cerr, _ = p.exchange(t, p.hostKey, false, io.Discard)
	require.Error(t, Refusal(cerr, p.clientKey), "second attempt: %v", cerr)
	require.GreaterOrEqual(t, time.Since(start), limitBase, "the second refusal from the address is delayed")
	for range 6 {
		p.limiter.fail("127.0.0.1", "SHA256:other")
	}
	require.Equal(t, 1, strings.Count(p.log(), "level=WARN"), "Warn lines for two refusals of one key:\n%s", p.log())
	// authorized_keys is read afresh: once listed, the key gets in.
	f, _ := os.OpenFile(filepath.Join(p.dir, AuthorizedKeysFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write(AuthorizedLine(PublicKey(p.clientKey), "now allowed"))
	_ = f.Close()
	start = time.Now()
	cerr, serr = p.exchange(t, p.hostKey, false, io.Discard)
	require.NoError(t, cerr, "after listing the key: client")
	require.NoError(t, serr, "after listing the key: server")
	assert.Less(t, time.Since(start), tarpit(8), "an authorized key is not delayed after its address's failures")
	assert.NoError(t, Refusal(errors.New("other"), p.clientKey), "Refusal of an unrelated error")
	assert.NoError(t, Refusal(nil, p.clientKey))
}

func TestTLSChangedHostKeyRefused(t *testing.T) {
	p := newPair(t, true)
	cerr, serr := p.exchange(t, p.hostKey, false, io.Discard)
	require.NoError(t, cerr, "first contact: client")
	require.NoError(t, serr, "first contact: server")
	_, impostor, _ := ed25519.GenerateKey(rand.Reader)
	cerr, serr = p.exchange(t, impostor, false, io.Discard)
	var changed *HostKeyChangedError
	require.ErrorAs(t, cerr, &changed)
	assert.Equal(t, Fingerprint(PublicKey(p.hostKey)), changed.Known)
	assert.Equal(t, Fingerprint(PublicKey(impostor)), changed.Offered)
	var op *net.OpError
	require.ErrorAs(t, cerr, &op, "a dial OpError, not retried")
	assert.Equal(t, "dial", op.Op)
	assert.Error(t, serr, "server")
}

func TestTLSStrictUnknownRefused(t *testing.T) {
	p := newPair(t, true)
	cerr, _ := p.exchange(t, p.hostKey, true, io.Discard)
	var unknown *UnknownHostError
	require.ErrorAs(t, cerr, &unknown)
	assert.True(t, IsHostKeyError(cerr))
	data, _ := os.ReadFile(filepath.Join(p.dir, KnownHostsFile))
	assert.Empty(t, data, "strict mode records nothing")
}
