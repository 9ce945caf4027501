package reshdcmd

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"resh/auth"
	"resh/cluster"
)

// Restart backoff of a local executor that exited, and how long it must
// have run for the backoff to start over.
const (
	localBackoffMin = time.Second
	localBackoffMax = 30 * time.Second
	localStable     = time.Minute
	localStopWait   = 5 * time.Second
)

// locals supervises a master's -local executors: reshd -join processes of
// this same executable, restarted with backoff when they exit, stopped
// with the master.
type locals struct {
	log  *slog.Logger
	stop func()
}

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

// startLocal starts o.Local executors joined to the master listening at
// listen; their log lines go to logOut.
func startLocal(o Options, listen string, m *cluster.Master, logOut io.Writer, log *slog.Logger) (*locals, error) {
	addr := joinable(listen)
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	var masterKey ssh.PublicKey
	if !o.Insecure {
		hk, err := auth.LoadIdentity(filepath.Join(home, auth.HostKeyFile))
		if err != nil {
			return nil, err
		}
		masterKey = auth.PublicKey(hk)
	}
	var homes []string
	for k := 1; k <= o.Local; k++ {
		dir, err := localHome(home, k, addr, masterKey)
		if err != nil {
			return nil, err
		}
		homes = append(homes, dir)
	}
	exe := selfExe()
	stopping := make(chan struct{})
	var wg sync.WaitGroup
	for k, dir := range homes {
		name := fmt.Sprintf("local-%d", k+1)
		args := []string{"-join", addr, "-name", name, "-known-only", "-executor-timeout", o.ExecutorTimeout.String()}
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			superviseLocal(name, exe, args, dir, logOut, log, stopping, func() { m.Starting(name, "local") })
		}()
	}
	log.Info("reshd: local executors started", "count", o.Local, "master", addr)
	var once sync.Once
	return &locals{log: log, stop: func() {
		once.Do(func() {
			close(stopping)
			wg.Wait()
		})
	}}, nil
}

// superviseLocal runs one local executor until stopping, restarting it
// with backoff whenever it exits. Its thread stays locked for its whole
// life: the children's parent-death signal fires when the thread that
// started them exits, so it must not exit before the master does.
func superviseLocal(name, exe string, args []string, home string, logOut io.Writer, log *slog.Logger, stopping <-chan struct{}, starting func()) {
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
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
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
