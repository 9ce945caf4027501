package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
)

// socketDirPattern names a session's transfer socket directory (for
// os.MkdirTemp): resh-PID-RANDOM, PID being the reshd that made it, so that
// a later reshd can tell the directories of a dead one.
func socketDirPattern() string {
	return fmt.Sprintf("resh-%d-", os.Getpid())
}

var socketDirRE = regexp.MustCompile(`^resh-([0-9]+)-[0-9]+$`)

// socketDirBases are the directories transfer socket directories are made
// in (see newBroker).
func socketDirBases() []string {
	bases := []string{"/tmp"}
	if t := os.TempDir(); t != "/tmp" && len(t) <= 64 {
		bases = append(bases, t)
	}
	return bases
}

// removeStaleSocketDirs removes the transfer socket directories of dead
// processes: named resh-PID-RANDOM, a directory (not a link), owned by this
// user, PID not this process and no process at all. A live process with
// that PID, even another program, keeps its directory.
func removeStaleSocketDirs(log *slog.Logger) {
	uid := os.Getuid()
	for _, base := range socketDirBases() {
		entries, err := os.ReadDir(base)
		if err != nil {
			continue
		}
		for _, e := range entries {
			m := socketDirRE.FindStringSubmatch(e.Name())
			if m == nil || !e.IsDir() {
				continue
			}
			pid, err := strconv.Atoi(m[1])
			if err != nil || pid <= 0 || pid == os.Getpid() {
				continue
			}
			dir := filepath.Join(base, e.Name())
			fi, err := os.Lstat(dir)
			if err != nil || !fi.IsDir() {
				continue
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
				continue
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				continue // alive (or not ours to signal: alive)
			}
			if err := os.RemoveAll(dir); err != nil {
				log.Warn("reshd: cannot remove the socket directory of a dead reshd", "dir", dir, "err", err)
				continue
			}
			log.Info("reshd: removed the socket directory of a dead reshd", "dir", dir, "pid", pid)
		}
	}
}
