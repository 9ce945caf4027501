package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"resh/mitm"
)

// reshEnv is resh with extra environment variables.
func reshEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := reshCommand(context.Background(), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// A stranger, whose key is not in reshd's authorized_keys, is refused with
// status 255 and one line saying so.
func TestStrangerRefused(t *testing.T) {
	tlsOnly(t)
	d := startReshd(t)
	r := reshEnv(t, []string{"RESH_HOME=" + t.TempDir()}, d.addr, "echo should-not-run")
	if r.code != 255 || strings.Contains(r.stdout, "should-not-run") {
		t.Fatalf("stranger: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "resh: ") || !strings.Contains(last, "not authorized") {
		t.Fatalf("stranger's message: %q", r.stderr)
	}
}

// A server whose host key changed is refused, loudly, naming the line of
// known_hosts to remove.
func TestChangedHostKeyRefused(t *testing.T) {
	tlsOnly(t)
	d := startReshd(t) // first contact recorded its key
	addr := d.addr
	stopReshd(t, d)
	// Another reshd on the same address, with another host key, that
	// still lets our key in.
	other := t.TempDir()
	pub, err := os.ReadFile(filepath.Join(os.Getenv("RESH_HOME"), "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	startReshdAt(t, addr, []string{"RESH_HOME=" + other})
	r := resh(t, "", "", addr, "echo should-not-run")
	if r.code != 255 || strings.Contains(r.stdout, "should-not-run") {
		t.Fatalf("changed host key: %+v", r)
	}
	if !strings.Contains(r.stderr, "known_hosts") || !strings.Contains(r.stderr, "SHA256:") {
		t.Fatalf("changed host key message: %q", r.stderr)
	}
}

// recorder is a plain TCP relay that keeps every byte it passes.
type recorder struct {
	l   net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
	wg  sync.WaitGroup
}

func record(t *testing.T, target string) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer r.wg.Done()
				b := make([]byte, 32<<10)
				for {
					n, err := src.Read(b)
					if n > 0 {
						r.mu.Lock()
						r.buf.Write(b[:n])
						r.mu.Unlock()
						_, _ = dst.Write(b[:n])
					}
					if err != nil {
						dst.Close()
						src.Close()
						return
					}
				}
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	t.Cleanup(func() { l.Close(); r.wg.Wait() })
	return r
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Contains(r.buf.Bytes(), []byte(s))
}

// Nothing crosses the wire in clear: neither the command, nor its output,
// nor stdin. With -insecure on both sides the same capture shows them,
// which proves the capture would see them.
func TestNoClearTextOnTheWire(t *testing.T) {
	tlsOnly(t)
	secret := "TOPSECRET-7f3a"
	d := startReshd(t)
	rec := record(t, d.addr)
	addr := rec.l.Addr().String()
	first := reshEnv(t, nil, addr, "true") // new host:port: records its key
	if first.code != 0 {
		t.Fatalf("first contact: %+v", first)
	}
	r := resh(t, "", secret+"-stdin\n", addr, "cat; echo "+secret+"-output")
	if r.code != 0 || !strings.Contains(r.stdout, secret+"-output") {
		t.Fatalf("run: %+v", r)
	}
	for _, s := range []string{secret + "-stdin", secret + "-output", "echo " + secret} {
		if rec.contains(s) {
			t.Fatalf("%q crossed the wire in clear", s)
		}
	}
	// The control: without TLS the capture sees it all.
	di := startReshd(t, "-insecure")
	reci := record(t, di.addr)
	r = resh(t, "", "", "-insecure", reci.l.Addr().String(), "echo "+secret+"-output")
	if r.code != 0 || !reci.contains(secret+"-output") {
		t.Fatalf("insecure control run: %+v, captured clear text: %v", r, reci.contains(secret+"-output"))
	}
}

// Random damage (corrupted bytes and removed runs) in both directions is
// repaired by the connection below TLS, frame by frame: with TLS on (the
// default) the data arrive exact and the session keeps its one TCP
// connection; TLS never sees a damaged byte.
func TestDamageRepairedBelowTLS(t *testing.T) {
	tlsOnly(t)
	d := startReshd(t)
	damage := mitm.Faults{Corrupt: 2e-5, Cut: 5e-6}
	p := throughMitm(t, d, damage, damage)
	before := p.Stats().Accepted
	data := randomText(4<<20, 31)
	r := resh(t, "", data, p.Addr().String(), "sha256sum; cat /dev/zero | head -c 3000000 | sha256sum")
	want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data)))
	want += fmt.Sprintf("%x  -\n", sha256.Sum256(make([]byte, 3000000)))
	if r.stdout != want || r.code != 0 {
		t.Fatalf("through damage: %+v, want %q", r, want)
	}
	st := p.Stats()
	if st.Up.Corrupt+st.Down.Corrupt == 0 || st.Up.Cut+st.Down.Cut == 0 {
		t.Fatalf("the path did no harm: %+v", st)
	}
	if n := st.Accepted - before; n != 1 {
		t.Fatalf("%d TCP connections for one session: damage cost reconnections", n)
	}
}

// A deliberate attacker who alters DATA payloads and fixes their CRCs gets
// past the connection but not TLS: the session ends loudly (255, a message
// naming tampering, a warning in reshd's log), and no altered byte reaches
// the command or the user. In each direction, in the middle of a session
// and from its first handshake.
func TestTamperingEndsTheSession(t *testing.T) {
	tlsOnly(t)
	const size = 8 << 20
	for _, tc := range []struct {
		name, dir string
		midway    bool
	}{{"down/midway", "down", true}, {"up/midway", "up", true}, {"up/handshake", "up", false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := startReshd(t)
			p := throughMitm(t, d, mitm.Faults{}, mitm.Faults{})
			tamper := func() {
				if tc.dir == "down" {
					p.SetFaults(mitm.Faults{}, mitm.Faults{Tamper: 1e-5})
				} else {
					p.SetFaults(mitm.Faults{Tamper: 1e-5}, mitm.Faults{})
				}
			}
			if !tc.midway {
				tamper()
			}
			// Zeros both ways, so that an altered byte would show: down,
			// resh's output; up, what the remote command counts.
			command := fmt.Sprintf("echo ready; read x; head -c %d /dev/zero", size)
			if tc.dir == "up" {
				command = "echo ready; tr -d '\\000' | wc -c"
			}
			cmd := reshCommand(context.Background(), p.Addr().String(), command)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			out := bufio.NewReader(stdout)
			if line, _ := out.ReadString('\n'); line == "ready\n" {
				tamper()
				if tc.dir == "down" {
					_, _ = io.WriteString(stdin, "go\n")
				} else {
					_, _ = stdin.Write(make([]byte, size))
				}
			} else if tc.midway {
				t.Fatalf("no ready line: %q, stderr %q", line, stderr.String())
			}
			stdin.Close()
			rest, _ := io.ReadAll(out)
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			switch {
			case tc.dir == "down" && strings.Trim(string(rest), "\x00") != "":
				t.Fatal("altered bytes were delivered")
			case tc.dir == "down" && len(rest) >= size:
				t.Fatalf("the whole output arrived through tampering")
			case tc.dir == "up" && len(rest) > 0 && strings.TrimSpace(string(rest)) != "0":
				t.Fatalf("the command received altered bytes: %q", rest)
			}
			if code != 255 || !strings.Contains(stderr.String(), "tampering") || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d (%v) stderr %q: want 255 and one line naming tampering", code, err, stderr.String())
			}
			if st := p.Stats(); st.Up.Tamper+st.Down.Tamper == 0 {
				t.Fatalf("nothing was tampered with: %+v", st)
			}
			t.Logf("resh said: %s", stderr.String())
			if tc.midway {
				d.waitLog(t, 10*time.Second, "tampering")
			}
		})
	}
}

// reshd -insecure will not listen beyond loopback.
func TestInsecureRefusesNonLoopback(t *testing.T) {
	cmd := exec.Command(filepath.Join(bin, "reshd"), "-insecure", "-listen", "0.0.0.0:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "loopback") {
		t.Fatalf("reshd -insecure on 0.0.0.0: %v %s", err, out)
	}
}

var _ = io.EOF
