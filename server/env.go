package server

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"resh/proto"
)

// defaultPath follows the directory of reshd's own executable in the
// command's PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// command builds the command a Hello asks for, run as the user running
// reshd in their home directory ($HOME, else the one in the user database): `sh -c COMMAND`, or the login shell with
// -l for an empty command. socket is the session's RESH_SOCKET.
func command(h proto.Hello, socket string) (*exec.Cmd, error) {
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("reshd: who am I: %w", err)
	}
	shell := loginShell(u.Uid)
	var cmd *exec.Cmd
	if h.Command == "" {
		cmd = exec.Command(shell, "-l")
	} else {
		cmd = exec.Command("/bin/sh", "-c", h.Command)
	}
	// reshd's own $HOME first, so that a reshd started with another HOME
	// (tests, a service account) keeps its commands there.
	home := os.Getenv("HOME")
	if home == "" {
		home = u.HomeDir
	}
	if st, err := os.Stat(home); err != nil || !st.IsDir() {
		home = "/"
	}
	cmd.Dir = home
	cmd.Env = environment(h, u, home, shell, socket)
	return cmd, nil
}

// environment is the command's whole environment.
func environment(h proto.Hello, u *user.User, home, shell, socket string) []string {
	path := defaultPath
	if exe, err := os.Executable(); err == nil {
		path = filepath.Dir(exe) + ":" + defaultPath
	}
	env := []string{
		"HOME=" + home,
		"USER=" + u.Username,
		"LOGNAME=" + u.Username,
		"SHELL=" + shell,
		"PATH=" + path,
		"RESH_SOCKET=" + socket,
	}
	term := h.Term
	for k, v := range h.Env {
		switch {
		case k == "TERM":
			if term == "" {
				term = v
			}
		case k == "LANG", strings.HasPrefix(k, "LC_") && !strings.ContainsAny(k, "=\x00"):
			if !strings.Contains(v, "\x00") {
				env = append(env, k+"="+v)
			}
		}
	}
	if term != "" && !strings.Contains(term, "\x00") {
		env = append(env, "TERM="+term)
	}
	return env
}

// loginShell is $SHELL, else the user's shell in /etc/passwd, else /bin/sh.
func loginShell(uid string) string {
	if s := os.Getenv("SHELL"); s != "" {
		return s
	}
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/bin/sh"
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 7 && fields[2] == uid && fields[6] != "" {
			if _, err := strconv.Atoi(fields[2]); err == nil {
				return fields[6]
			}
		}
	}
	return "/bin/sh"
}
