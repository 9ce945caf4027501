package reshdcmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// detachedEnv marks the background reshd that detach starts: its value is
// the descriptor on which the child says it listens, or why it cannot.
const detachedEnv = "RESHD_DETACHED_FD"

// detachWait bounds how long detach waits for the background reshd to
// listen (it may first stop the one it replaces and create keys).
const detachWait = 30 * time.Second

// replaceWait bounds how long -replace waits for the previous reshd to
// exit after SIGTERM: its shutdown takes at most shutdownTimeout.
const replaceWait = shutdownTimeout + 5*time.Second

// detachedChild returns, in the background reshd started by detach, the
// pipe to report on; nil otherwise. The pipe is closed on exec, so that
// neither the guardian nor the sessions hold it.
func detachedChild() *os.File {
	v := os.Getenv(detachedEnv)
	if v == "" {
		return nil
	}
	_ = os.Unsetenv(detachedEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "reshd-ready")
}

// detach starts reshd again in the background, in a session of its own,
// with the same arguments and its output in the log file, and waits until
// it listens: it returns 0 then, or the child's status after printing why
// it could not.
func detach(o Options, stdout, stderr io.Writer) int {
	logf, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "reshd: cannot open the log file: %v\n", err)
		return 1
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "reshd: %v\n", err)
		return 1
	}
	defer r.Close()
	cmd := exec.Command(selfExe(), os.Args[1:]...)
	cmd.Args[0] = os.Args[0] // seen in ps as it was started
	cmd.Env = append(os.Environ(), detachedEnv+"=3")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "reshd: cannot start in the background: %v\n", err)
		return 1
	}
	said := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r) // until the child listens or exits
		said <- string(b)
	}()
	var msg string
	select {
	case msg = <-said:
	case <-time.After(detachWait):
		_, _ = fmt.Fprintf(stderr, "reshd: the background reshd (pid %d) did not listen within %v: see %s\n", cmd.Process.Pid, detachWait, o.LogFile)
		_ = cmd.Process.Release()
		return 1
	}
	// The child says where it listens last, after the dashboard's URL
	// when it serves one.
	if i := strings.Index(msg, "reshd: listening on "); i >= 0 && (i == 0 || msg[i-1] == '\n') {
		_, _ = io.WriteString(stdout, msg[:i])
		_, _ = fmt.Fprintf(stdout, "%s (pid %d, log in %s)\n", strings.TrimSuffix(msg[i:], "\n"), cmd.Process.Pid, o.LogFile)
		_ = cmd.Process.Release()
		return 0
	}
	_, _ = io.WriteString(stderr, msg)
	code := 1
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
	}
	if msg == "" {
		_, _ = fmt.Fprintf(stderr, "reshd: the background reshd exited (status %d) without listening: see %s\n", code, o.LogFile)
	}
	return code
}

// writePIDFile writes this process's id to path, replacing the file at
// once (a reader never sees it half written).
func writePIDFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".reshd-pid-*")
	if err != nil {
		return fmt.Errorf("cannot write the pid file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("cannot write the pid file: %w", err)
	}
	return nil
}

// readPIDFile returns the process id in path.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a process id", path)
	}
	return pid, nil
}

// removePIDFile removes path if it still names this process (a reshd that
// replaced this one may have written its own).
func removePIDFile(path string) {
	if pid, err := readPIDFile(path); err == nil && pid == os.Getpid() {
		_ = os.Remove(path)
	}
}

// replace stops the reshd whose process id is in pidFile, if it runs,
// with SIGTERM, and waits for it to exit. A missing file, a dead process
// or a process that is not a reshd (its pid reused) is left alone.
func replace(pidFile string, log *slog.Logger) error {
	pid, err := readPIDFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-replace: %v", err)
	}
	if pid == os.Getpid() || !alive(pid) {
		return nil
	}
	if name, ok := processName(pid); ok && name != "reshd" {
		log.Warn("reshd: -replace: the pid file names another program (its reshd is gone), left alone", "pid", pid, "program", name)
		return nil
	}
	log.Info("reshd: -replace: stopping the previous reshd", "pid", pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("-replace: cannot stop the previous reshd (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(replaceWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("-replace: the previous reshd (pid %d) did not exit within %v of SIGTERM", pid, replaceWait)
		}
		<-tick.C
	}
	return nil
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) || !procMounted()
	}
	// pid (comm) S ...: the state follows the last parenthesis.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// procMounted reports whether /proc describes processes here.
func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// processName returns the base name of the program process pid was started
// as (its argv[0], which survives reshd's re-execution of itself), when
// /proc tells.
func processName(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return "", false
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return filepath.Base(argv0), true
}
