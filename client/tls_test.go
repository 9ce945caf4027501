package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"resh/auth"
	"resh/connection"
	"resh/mitm"
	"resh/server"
)

// secureServer runs a real reshd server over TLS whose RESH_HOME is home:
// host key there, clients admitted by home/authorized_keys, which lists the
// identity home/id_ed25519 (both made if missing). It returns the address.
func secureServer(t *testing.T, home string) string {
	t.Helper()
	host, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	ak := filepath.Join(home, auth.AuthorizedKeysFile)
	if _, err := auth.EnsureAuthorizedKeys(ak, auth.PublicKey(id), ""); err != nil {
		t.Fatal(err)
	}
	tcfg, err := auth.ServerTLS(host, ak, nil, auth.NewLimiter())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.Listen("127.0.0.1:0", &server.Config{TLS: tcfg})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv.Addr().String()
}

// runSecure runs resh (TLS on) with RESH_HOME=home against addr.
func runSecure(t *testing.T, home, addr string, o Options, stdin string) (int, string, string) {
	t.Helper()
	h, p, _ := net.SplitHostPort(addr)
	o.Host = h
	fmt.Sscan(p, &o.Port)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), &o, Env{
		Stdin:   strings.NewReader(stdin),
		Stdout:  &stdout,
		Stderr:  &stderr,
		Environ: []string{"RESH_HOME=" + home, "LANG=C"},
		Dir:     t.TempDir(),
		Signals: make(chan os.Signal),
	})
	return code, stdout.String(), stderr.String()
}

// recorder keeps every byte a mitm sends to and reads from the server.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

type recConn struct {
	net.Conn
	r *recorder
}

func (c recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.buf.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

func (c recConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.r.mu.Lock()
	c.r.buf.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

func (r *recorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return recConn{c, r}, nil
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// A session over TLS through a proxy that records the traffic: the output
// is exact, the host is recorded at first contact only, and neither the
// command, its input nor its output appear on the wire.
func TestTLSSessionNoClearText(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	var rec recorder
	p, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: addr, Dial: rec.dial})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	paddr := p.Addr().String()

	code, stdout, stderr := runSecure(t, home, paddr, Options{Command: "echo out-MARKER-7f3a; cat; echo err-MARKER-91 >&2"}, "stdin-MARKER-c0de\n")
	if code != 0 || stdout != "out-MARKER-7f3a\nstdin-MARKER-c0de\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "resh: new host "+paddr+", key SHA256:") || lines[1] != "err-MARKER-91" {
		t.Fatalf("first contact stderr %q; want the new host line, then the command's", stderr)
	}
	wire := rec.bytes()
	if len(wire) < 1000 {
		t.Fatalf("only %d bytes recorded", len(wire))
	}
	for _, secret := range []string{"MARKER", "echo out", "stdin-", "err-"} {
		if bytes.Contains(wire, []byte(secret)) {
			t.Errorf("%q in clear on the wire", secret)
		}
	}
	code, stdout, stderr = runSecure(t, home, paddr, Options{Command: "echo again"}, "")
	if code != 0 || stdout != "again\n" || stderr != "" {
		t.Fatalf("second contact: exit %d stdout %q stderr %q; want it quiet", code, stdout, stderr)
	}
}

// Damage on the path is repaired by the connection below TLS, frame by
// frame: the data arrive exact over one TCP connection, and TLS never sees
// a damaged byte.
func TestTLSDamageRepairedBelowTLS(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	damage := mitm.Faults{Corrupt: 2e-5, Cut: 1e-5}
	p, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: addr, Up: damage, Down: damage, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// First contact on a clean path.
	p.SetFaults(mitm.Faults{}, mitm.Faults{})
	if code, _, stderr := runSecure(t, home, p.Addr().String(), Options{Command: "true"}, ""); code != 0 {
		t.Fatalf("first contact: %d %q", code, stderr)
	}
	p.SetFaults(damage, damage)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	text := fmt.Sprintf("%x", data)
	code, stdout, stderr := runSecure(t, home, p.Addr().String(), Options{Command: "sha256sum; head -c 1000000 /dev/zero | tr '\\0' x"}, text)
	want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(text))) + strings.Repeat("x", 1000000)
	if code != 0 || stdout != want {
		t.Fatalf("exit %d, stdout %d bytes (want %d), stderr %q", code, len(stdout), len(want), stderr)
	}
	st := p.Stats()
	if st.Up.Corrupt+st.Down.Corrupt+st.Up.Cut+st.Down.Cut == 0 {
		t.Fatalf("the path did no harm: %+v", st)
	}
	if st.Accepted != 2 {
		t.Fatalf("%d TCP connections for 2 sessions: damage cost reconnections", st.Accepted)
	}
}

// A client whose key is not in authorized_keys: 255 and one line.
func TestStrangerRefused(t *testing.T) {
	addr := secureServer(t, t.TempDir())
	stranger := t.TempDir()
	code, stdout, stderr := runSecure(t, stranger, addr, Options{Command: "echo in"}, "")
	id, err := auth.LoadIdentity(filepath.Join(stranger, auth.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	want := "resh: not authorized: the server does not accept key " + auth.Fingerprint(auth.PublicKey(id)) + "\n"
	if code != ExitFailure || stdout != "" || !strings.HasSuffix(stderr, want) {
		t.Fatalf("exit %d stdout %q stderr %q; want 255 and %q", code, stdout, stderr, want)
	}
	// The host is known now: the refusal is the only line.
	code, _, stderr = runSecure(t, stranger, addr, Options{Command: "echo in"}, "")
	if code != ExitFailure || stderr != want {
		t.Fatalf("again: exit %d stderr %q; want 255 and %q", code, stderr, want)
	}
}

// resh -i with an existing OpenSSH key (made by ssh-keygen) listed in
// authorized_keys gets in.
func TestIdentityFlag(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	pub, err := os.ReadFile("../auth/testdata/ed25519_sshkeygen.pub")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(home, auth.AuthorizedKeysFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write(pub)
	_ = f.Close()
	client := t.TempDir()
	code, stdout, stderr := runSecure(t, client, addr, Options{Command: "echo in", Identity: "../auth/testdata/ed25519_sshkeygen"}, "")
	if code != 0 || stdout != "in\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(client, auth.IdentityFile)); err == nil {
		t.Error("resh -i made a default identity")
	}
	code, _, stderr = runSecure(t, client, addr, Options{Command: "echo in", Identity: "../auth/testdata/rsa"}, "")
	if code != ExitFailure || !strings.Contains(stderr, "needs an ed25519 key") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("RSA key: exit %d stderr %q", code, stderr)
	}
}

// A server whose host key differs from the pinned one is refused, loudly.
func TestChangedHostKeyRefused(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	_, old, _ := ed25519.GenerateKey(rand.Reader)
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, auth.PublicKey(old)) + "\n"
	kh := filepath.Join(home, auth.KnownHostsFile)
	if err := os.WriteFile(kh, []byte("# pinned\n"+line), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runSecure(t, home, addr, Options{Command: "echo in"}, "")
	host, _ := auth.LoadIdentity(filepath.Join(home, auth.HostKeyFile))
	if code != ExitFailure || stdout != "" {
		t.Fatalf("exit %d stdout %q", code, stdout)
	}
	for _, s := range []string{"resh: WARNING: THE HOST KEY OF " + addr + " HAS CHANGED", auth.Fingerprint(auth.PublicKey(old)), auth.Fingerprint(auth.PublicKey(host)), "remove line 2 of " + kh} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr %q lacks %q", stderr, s)
		}
	}
	if data, _ := os.ReadFile(kh); string(data) != "# pinned\n"+line {
		t.Errorf("known_hosts changed: %q", data)
	}
}

// -known-only refuses a host not in known_hosts yet, in one line.
func TestKnownOnly(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	code, _, stderr := runSecure(t, home, addr, Options{Command: "echo in", KnownOnly: true}, "")
	if code != ExitFailure || !strings.HasPrefix(stderr, "resh: unknown host "+addr) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d stderr %q; want 255 and one line", code, stderr)
	}
	if code, _, _ := runSecure(t, home, addr, Options{Command: "true"}, ""); code != 0 {
		t.Fatal("first contact failed")
	}
	if code, stdout, stderr := runSecure(t, home, addr, Options{Command: "echo in", KnownOnly: true}, ""); code != 0 || stdout != "in\n" || stderr != "" {
		t.Fatalf("known host with -known-only: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

// resh (TLS) to a plain server and resh -insecure to a TLS server say so.
func TestTLSMismatch(t *testing.T) {
	home := t.TempDir()
	addr := secureServer(t, home)
	h, p, _ := net.SplitHostPort(addr)
	o := Options{Host: h, Command: "true", Insecure: true}
	fmt.Sscan(p, &o.Port)
	var stderrb bytes.Buffer
	code := Run(context.Background(), &o, Env{Stdin: strings.NewReader(""), Stdout: &stderrb, Stderr: &stderrb, Dir: t.TempDir(), Signals: make(chan os.Signal),
		Connection: &connection.Config{HandshakeTimeout: 300 * time.Millisecond, DialAttempts: 1}})
	if stderr := stderrb.String(); code != ExitFailure || !strings.HasPrefix(stderr, "resh: cannot connect to "+addr+": the server requires TLS") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("-insecure to TLS: exit %d output %q", code, stderr)
	}
	plain, err := connection.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	code, _, stderr := runSecure(t, home, plain.Addr().String(), Options{Command: "true"}, "")
	if code != ExitFailure || !strings.Contains(stderr, "the server runs without TLS") {
		t.Fatalf("TLS to plain: exit %d stderr %q", code, stderr)
	}
}
