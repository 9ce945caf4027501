package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Guard is reshd's guardian: a process of its own, one per reshd, that
// hangs up the sessions' commands if reshd dies without ending them (kill
// -9, a crash). reshd tells it each session's process group over a pipe;
// when the pipe reaches its end with groups still listed, reshd is gone:
// the guardian sends SIGHUP (and SIGCONT) to every one of those groups,
// and SIGKILL to those left after the kill grace, as a session whose
// client is gone gets. The leader's Pdeathsig covers the moment before the
// group is listed. A nil *Guard does nothing.
type Guard struct {
	log *slog.Logger
	cmd *exec.Cmd

	mu     sync.Mutex
	w      *os.File // nil once closed or broken
	warned bool
}

// guardWriteTimeout bounds a write to the guardian (a guardian that does
// not read must not hold up sessions).
const guardWriteTimeout = time.Second

// StartGuard starts the guardian: the program name with args, which must
// run ServeGuard on its standard input (reshd runs itself with a hidden
// argument). It runs in a process group of its own, so that ^C at reshd's
// terminal does not end it first.
func StartGuard(log *slog.Logger, name string, args ...string) (*Guard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reshd: guardian: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stderr = r, os.Stderr
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_ = r.Close()
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("reshd: guardian: %w", err)
	}
	return &Guard{log: log, cmd: cmd, w: w}, nil
}

// add lists a session's process group.
func (g *Guard) add(pgid int) { g.send('+', pgid) }

// remove takes a session's process group off the list.
func (g *Guard) remove(pgid int) { g.send('-', pgid) }

func (g *Guard) send(op byte, pgid int) {
	if g == nil || pgid <= 1 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w == nil {
		return
	}
	_ = g.w.SetWriteDeadline(time.Now().Add(guardWriteTimeout))
	if _, err := fmt.Fprintf(g.w, "%c%d\n", op, pgid); err != nil && !g.warned {
		g.warned = true
		g.log.Warn("reshd: guardian unreachable: sessions will not be hung up if reshd dies", "err", err)
	}
}

// Close ends the guardian once reshd ended its sessions: it hangs up the
// groups still listed (sessions cut at shutdown) and exits.
func (g *Guard) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	w := g.w
	g.w = nil
	g.mu.Unlock()
	if w == nil {
		return nil
	}
	_ = w.Close()
	return g.cmd.Wait()
}

// ServeGuard is the guardian's body: it reads the process groups reshd
// lists on r ("+PGID" and "-PGID" lines) until the end, then hangs up
// those still listed: SIGHUP and SIGCONT, then SIGKILL to the groups left
// after grace. The guardian's program should ignore the signals that end
// reshd (HUP, INT, TERM): reshd's end is what it waits for. It returns the
// exit status.
func ServeGuard(r io.Reader, log io.Writer, grace time.Duration) int {
	groups := map[int]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		op, pgid, ok := parseGuardLine(sc.Text())
		if !ok {
			continue
		}
		if op == '+' {
			groups[pgid] = true
		} else {
			delete(groups, pgid)
		}
	}
	if len(groups) == 0 {
		return 0
	}
	_, _ = fmt.Fprintf(log, "reshd: guardian: reshd ended with %d session(s) running: hanging them up\n", len(groups))
	hangupGroups(groups, grace, 50*time.Millisecond)
	return 0
}

// parseGuardLine reads "+PGID" or "-PGID". A group id of 0 or 1 is refused:
// kill(0) and kill(-1) would signal the guardian's own group, or every
// process.
func parseGuardLine(line string) (op byte, pgid int, ok bool) {
	if len(line) < 2 || line[0] != '+' && line[0] != '-' {
		return 0, 0, false
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n <= 1 || line[1] == '+' || line[1] == '-' {
		return 0, 0, false
	}
	return line[0], n, true
}

// hangupGroups sends SIGHUP and SIGCONT to each group, then, polling every
// tick, SIGKILL to those still there after grace.
func hangupGroups(groups map[int]bool, grace, tick time.Duration) {
	for g := range groups {
		_ = syscall.Kill(-g, syscall.SIGHUP)
		_ = syscall.Kill(-g, syscall.SIGCONT)
	}
	deadline := time.Now().Add(grace)
	for len(groups) > 0 {
		for g := range groups {
			if syscall.Kill(-g, 0) == syscall.ESRCH {
				delete(groups, g)
			}
		}
		if len(groups) == 0 {
			return
		}
		if !time.Now().Before(deadline) {
			for g := range groups {
				_ = syscall.Kill(-g, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(tick)
	}
}
