package reshdcmd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"resh/auth"
	"resh/cluster"
	"resh/web"
)

// Restart backoff of a local executor that exited, and how long it must
// have run for the backoff to start over.
const (
	localBackoffMin = time.Second
	localBackoffMax = 30 * time.Second
	localStable     = time.Minute
	localStopWait   = 5 * time.Second
)

// locals supervises a master's local executors: reshd -join processes of
// this same executable, restarted with backoff when they exit, stopped
// with the master. Their number changes at run time (the dashboard's
// buttons): local-K is the K-th, with RESH_HOME/local/K as its home.
type locals struct {
	o         Options
	addr      string // the master's, as the executors dial it
	home      string // the master's RESH_HOME
	masterKey ssh.PublicKey
	exe       string
	m         *cluster.Master
	logOut    io.Writer
	log       *slog.Logger

	setMu   sync.Mutex // one SetCount at a time
	mu      sync.Mutex
	running map[int]*localProc // by number
	closed  bool
	wg      sync.WaitGroup
}

// localProc is one local executor's supervisor.
type localProc struct {
	name     string
	stop     chan struct{} // closed to stop it
	done     chan struct{} // closed once it stopped
	pid      atomic.Int64  // of the running process, 0 between runs
	restarts atomic.Int64
}

// maxLocal is how many local executors a master may run.
const maxLocal = 64

// localHome prepares the RESH_HOME of local executor k under the master's
// home: its host key (created on first start) listed in the master's
// executors file, and a known_hosts pinning the master's key at addr.
func localHome(home string, k int, addr string, masterKey ssh.PublicKey) (string, error) {
	dir := filepath.Join(home, "local", strconv.Itoa(k))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot prepare local executor %d: %w", k, err)
	}
	key, _, err := auth.LoadOrCreateIdentity(filepath.Join(dir, auth.HostKeyFile))
	if err != nil {
		return "", fmt.Errorf("local executor %d: %w", k, err)
	}
	if _, err := auth.AddAuthorizedKey(filepath.Join(home, auth.ExecutorsFile), auth.PublicKey(key), fmt.Sprintf("local executor %d (reshd -local)", k)); err != nil {
		return "", err
	}
	if masterKey != nil {
		// Recorded as resh would on first contact; another master sharing
		// this RESH_HOME (on another port) adds its own line beside. A key
		// recorded before that is not the master's (its host key was made
		// anew) is replaced: this file is the master's own.
		kh := filepath.Join(dir, auth.KnownHostsFile)
		err := auth.CheckKnownHost(kh, addr, masterKey, false, io.Discard)
		if auth.IsHostKeyError(err) {
			if err = os.Remove(kh); err == nil {
				err = auth.CheckKnownHost(kh, addr, masterKey, false, io.Discard)
			}
		}
		if err != nil {
			return "", fmt.Errorf("local executor %d: %w", k, err)
		}
	}
	return dir, nil
}

// joinable turns the master's listening address into one its local
// executors can dial: a wildcard address becomes loopback.
func joinable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
	case ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// newLocals prepares to supervise local executors of the master listening
// at listen, none running yet.
func newLocals(o Options, listen string, m *cluster.Master, logOut io.Writer, log *slog.Logger) (*locals, error) {
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	l := &locals{o: o, addr: joinable(listen), home: home, exe: selfExe(), m: m, logOut: logOut, log: log, running: map[int]*localProc{}}
	if !o.Insecure {
		hk, err := auth.LoadIdentity(filepath.Join(home, auth.HostKeyFile))
		if err != nil {
			return nil, err
		}
		l.masterKey = auth.PublicKey(hk)
	}
	return l, nil
}

// Max is how many local executors may run.
func (l *locals) Max() int { return maxLocal }

// List returns the local executors, by number.
func (l *locals) List() []web.Local {
	l.mu.Lock()
	defer l.mu.Unlock()
	ks := make([]int, 0, len(l.running))
	for k := range l.running {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	out := make([]web.Local, 0, len(ks))
	for _, k := range ks {
		p := l.running[k]
		pid := int(p.pid.Load())
		out = append(out, web.Local{Name: p.name, Running: pid != 0, PID: pid, Restarts: int(p.restarts.Load())})
	}
	return out
}

// SetCount starts or stops local executors until n run, the highest
// numbered stopping first and the lowest free numbers starting.
func (l *locals) SetCount(n int) error {
	if n < 0 || n > maxLocal {
		return fmt.Errorf("the number of local executors must be 0 to %d, not %d", maxLocal, n)
	}
	l.setMu.Lock()
	defer l.setMu.Unlock()
	for {
		l.mu.Lock()
		have := len(l.running)
		highest := 0
		for k := range l.running {
			highest = max(highest, k)
		}
		l.mu.Unlock()
		switch {
		case have < n:
			if _, err := l.Start(); err != nil {
				return err
			}
		case have > n:
			if err := l.Stop(localName(highest)); err != nil && !errors.Is(err, web.ErrNoLocal) {
				return err
			}
		default:
			return nil
		}
	}
}

// Start starts one more local executor, with the lowest free number, and
// returns its name.
func (l *locals) Start() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("the master is stopping")
	}
	k := 1
	for l.running[k] != nil {
		k++
	}
	if k > maxLocal {
		return "", fmt.Errorf("%d local executors run already, the most there may be", maxLocal)
	}
	dir, err := localHome(l.home, k, l.addr, l.masterKey)
	if err != nil {
		return "", err
	}
	p := &localProc{name: localName(k), stop: make(chan struct{}), done: make(chan struct{})}
	l.running[k] = p
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(p.done)
		superviseLocal(p, l.exe, l.args(p.name), dir, l.logOut, l.log, func() { l.m.Starting(p.name, "local") })
	}()
	l.log.Info("reshd: local executor started", "name", p.name)
	return p.name, nil
}

// Stop stops the local executor named name and waits for it
// (web.ErrNoLocal when there is none).
func (l *locals) Stop(name string) error {
	l.mu.Lock()
	var p *localProc
	for k, q := range l.running {
		if q.name == name {
			p = q
			delete(l.running, k)
		}
	}
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: %q", web.ErrNoLocal, name)
	}
	close(p.stop)
	<-p.done
	l.log.Info("reshd: local executor stopped", "name", name)
	return nil
}

// stop stops them all, for the master's end; no other starts after it.
func (l *locals) stop() {
	l.mu.Lock()
	l.closed = true
	var ps []*localProc
	for k, p := range l.running {
		ps = append(ps, p)
		delete(l.running, k)
	}
	l.mu.Unlock()
	for _, p := range ps {
		close(p.stop)
	}
	l.wg.Wait()
}

// localName is local executor k's name.
func localName(k int) string { return fmt.Sprintf("local-%d", k) }

// args are the arguments of local executor name.
func (l *locals) args(name string) []string {
	o := l.o
	args := []string{"-join", l.addr, "-name", name, "-known-only", "-executor-timeout", o.ExecutorTimeout.String()}
	if o.MaxTasks > 0 {
		args = append(args, "-max-tasks", strconv.Itoa(o.MaxTasks))
	}
	if o.MaxCPU != 100 {
		args = append(args, "-max-cpu", strconv.FormatFloat(o.MaxCPU, 'f', -1, 64))
	}
	if o.Insecure {
		args = append(args, "-insecure")
	}
	if o.UnsafeNoSandbox {
		args = append(args, "-unsafe-no-sandbox")
	}
	if o.JobCeilingArg != "" {
		args = append(args, "-job-ceiling", o.JobCeilingArg)
	}
	return args
}

// superviseLocal runs one local executor until stopping, restarting it
// with backoff whenever it exits. Its thread stays locked for its whole
// life: the children's parent-death signal fires when the thread that
// started them exits, so it must not exit before the master does.
func superviseLocal(p *localProc, exe string, args []string, home string, logOut io.Writer, log *slog.Logger, starting func()) {
	name, stopping := p.name, p.stop
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	backoff := localBackoffMin
	for {
		cmd := exec.Command(exe, args...)
		cmd.Args[0] = "reshd" // in ps, not /proc/self/exe
		cmd.Env = append(os.Environ(), "RESH_HOME="+home)
		cmd.Stdout, cmd.Stderr = logOut, logOut
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		starting()
		started := time.Now()
		if err := cmd.Start(); err != nil {
			log.Error("reshd: cannot start a local executor", "name", name, "err", err)
		} else {
			p.pid.Store(int64(cmd.Process.Pid))
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				p.pid.Store(0)
				p.restarts.Add(1)
				if time.Since(started) > localStable {
					backoff = localBackoffMin
				}
				log.Warn("reshd: local executor exited: restarting it", "name", name, "pid", cmd.Process.Pid, "err", exitText(err), "in", backoff)
			case <-stopping:
				_ = cmd.Process.Signal(syscall.SIGTERM)
				t := time.NewTimer(localStopWait)
				select {
				case <-exited:
				case <-t.C:
					log.Warn("reshd: local executor did not stop: killed", "name", name, "pid", cmd.Process.Pid)
					_ = cmd.Process.Kill()
					<-exited
				}
				t.Stop()
				p.pid.Store(0)
				return
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-stopping:
			t.Stop()
			return
		}
		backoff = min(backoff*2, localBackoffMax)
	}
}

// exitText says how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
