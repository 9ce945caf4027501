package tests

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"resh/mitm"
)

// throughMitm starts a proxy in front of d with the given faults.
func throughMitm(t *testing.T, d *daemon, up, down mitm.Faults) *mitm.Proxy {
	t.Helper()
	p, err := mitm.Start("127.0.0.1:0", mitm.Config{Target: d.addr, Up: up, Down: down, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	d.firstContact(t, p.Addr().String())
	return p
}

// The suite again through a damaged path, in each direction, with TLS (the
// default) and with -insecure: every result stays exactly what it is on a
// clean path. "damaged" corrupts and cuts bytes: the connection repairs it
// below TLS, so each session keeps its one TCP connection. "hostile" also
// resets every connection after 700 KiB and every second: sessions resume
// on new ones.
func TestThroughDamagedPath(t *testing.T) {
	damaged := mitm.Faults{Corrupt: 2e-5, Cut: 1e-5}
	hostile := mitm.Faults{Corrupt: 2e-5, Cut: 1e-5, DropAfter: 700 << 10, DropEvery: time.Second}
	for _, path := range []string{"damaged", "hostile"} {
		for _, mode := range []string{"tls", "insecure"} {
			for _, dir := range []string{"up", "down"} {
				t.Run(path+"/"+mode+"/"+dir, func(t *testing.T) {
					var flags []string
					if mode == "insecure" {
						flags = []string{"-insecure"}
					}
					d := startReshd(t, flags...)
					faults := damaged
					if path == "hostile" {
						faults = hostile
					}
					var up, down mitm.Faults
					if dir == "up" {
						up = faults
					} else {
						down = faults
					}
					p := throughMitm(t, d, up, down)
					before := p.Stats().Accepted
					sessions := suite(t, d, p.Addr().String())
					st := p.Stats()
					if st.Up.Corrupt+st.Down.Corrupt+st.Up.Cut+st.Down.Cut == 0 {
						t.Fatalf("the path did no harm: %+v", st)
					}
					conns := int(st.Accepted - before)
					switch {
					case path == "damaged" && conns != sessions:
						t.Fatalf("%d TCP connections for %d sessions: damage cost reconnections", conns, sessions)
					case path == "hostile" && conns <= sessions:
						t.Fatalf("%d TCP connections for %d sessions: the resets did not happen", conns, sessions)
					}
				})
			}
		}
	}
}

// suite runs the core checks against reshd d reached at addr, and returns
// how many sessions it opened.
func suite(t *testing.T, d *daemon, addr string) int {
	t.Helper()
	dir := remoteDir(t, d, addr)
	if got, want := resh(t, "", "", d.args(addr, "ls -l /usr")...), local(t, dir, "", "ls -l /usr"); got != want {
		t.Errorf("ls -l /usr: %+v, locally %+v", got, want)
	}
	if r := resh(t, "", "", d.args(addr, "echo out; echo err >&2; exit 3")...); r.stdout != "out\n" || r.stderr != "err\n" || r.code != 3 {
		t.Errorf("outputs and status: %+v", r)
	}
	if r := resh(t, "", "", d.args(addr, "kill -TERM $$")...); r.code != 143 {
		t.Errorf("killed by SIGTERM: %+v", r)
	}
	data := randomText(2<<20, 21)
	r := resh(t, "", data, d.args(addr, "sha256sum")...)
	if want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data))); r.stdout != want {
		t.Errorf("sha256sum: %+v, want %q", r, want)
	}
	cdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cdir, "in"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	r = resh(t, cdir, "", d.args(addr, "lcat in | ltee out | sha256sum")...)
	got, err := os.ReadFile(filepath.Join(cdir, "out"))
	if want := fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(data))); r.code != 0 || err != nil || string(got) != data || r.stdout != want {
		t.Errorf("lcat | ltee: %+v, out %d bytes (%v)", r, len(got), err)
	}
	return 6
}

// A session whose client never comes back is ended after the detach
// timeout, and its processes get SIGHUP.
func TestAbandonedSessionGetsHangup(t *testing.T) {
	d := startReshd(t, "-detach-timeout", "1s")
	p := throughMitm(t, d, mitm.Faults{}, mitm.Faults{})
	fifo := filepath.Join(t.TempDir(), "hup")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := reshCommand(context.Background(), p.Addr().String(),
		"trap 'echo hangup > "+fifo+"; exit 1' HUP; echo ready; sleep 60 & wait")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("remote command did not start: %q %v", line, err)
	}
	// The client dies and the path goes away: no resume is possible.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	p.SetRefuse(1 << 30)
	p.DropAll()
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // blocks until the trap writes
		got <- string(b)
	}()
	select {
	case s := <-got:
		if s != "hangup\n" {
			t.Fatalf("fifo got %q", s)
		}
	case <-time.After(30 * time.Second):
		// Unblock the reader before failing.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		<-got
		t.Fatal("the abandoned command never got SIGHUP")
	}
}
