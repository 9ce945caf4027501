package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// jobUID and jobGID are the ids the job runs as, inside the sandbox and,
// when reshd is root, outside it too: nobody/nogroup.
const (
	jobUID = 65534
	jobGID = 65534
)

// Descriptors handed to bwrap (ExtraFiles start at 3).
const (
	fdSync     = 3 // bwrap --block-fd: the go-ahead once the cgroup is set
	fdInfo     = 4 // bwrap --info-fd: {"child-pid": N}
	fdPasswd   = 5 // --file /etc/passwd
	fdGroup    = 6 // --file /etc/group
	fdReport   = 7 // innerScript's reports to reshd: ready, then each command's end
	fdCommands = 8 // reshd's commands to innerScript, one line each
)

// innerScript is the sandbox's shell, the one process of the sandbox that
// is reshd's and not the job's. It closes the descriptors reshd passed but
// its two pipes, says it is ready, then runs the commands reshd sends on
// fdCommands, one line each (see commandLine: a subshell that closes both
// pipes, sets the command's environment and rlimits and execs it), one
// after the other. After each it reports "end STATUS" and the output of
// times(1) (its children's CPU time so far, which reshd turns into the
// command's own when no cgroup accounts for it). A status of 128+N stands
// for signal N, as shells report it. It ends at the end of fdCommands.
//
// The reports are the job's word only in as much as the job could reach
// this shell (a process of the same user in the same namespaces): they
// serve the job's own verdict, and every limit is enforced from outside.
const innerScript = `exec 3<&- 4>&- 5<&- 6<&-
NL='
'
echo ready >&7
while IFS= read -r c <&8; do
	eval "$c"
	s=$?
	echo "end $s" >&7
	times >&7
done`

// Minimal account files: the job's user and group, so that programs asking
// who they are get an answer; nothing of the host's accounts.
const (
	passwdData = "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/work:/usr/sbin/nologin\n"
	groupData  = "root:x:0:\nnogroup:x:65534:\n"
)

// systemDirs are bound read-only when they exist; a symlink (/bin ->
// usr/bin on merged-/usr systems) is recreated as a symlink.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// etcFiles are the only parts of /etc in the sandbox, bound read-only when
// they exist (a symlink, as /etc/localtime often is, is recreated as a
// symlink): the dynamic loader's cache, the alternatives symlinks (java,
// cc...), the time zone, the JDK's configuration. Never /etc/shadow,
// nor anything naming hosts or users beyond passwdData.
var etcFiles = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/alternatives", "/etc/localtime",
}

// etcGlobs add the JDK's /etc/java-N-openjdk directories.
var etcGlobs = []string{"/etc/java-*"}

// systemLayout is the part of bwrap's arguments that shows the host's
// system directories and files, looked for once: what is installed is
// taken as fixed for reshd's life, as the languages it detects are.
var systemLayout = sync.OnceValue(func() []string {
	var a []string
	for _, d := range systemDirs {
		a = appendLayout(a, d, true)
	}
	for _, f := range etcFiles {
		a = appendLayout(a, f, false)
	}
	for _, g := range etcGlobs {
		m, _ := filepath.Glob(g)
		for _, f := range m {
			a = appendLayout(a, f, false)
		}
	}
	return a
})

// appendLayout adds what shows path p of the host in the sandbox to a:
// a symlink as the same symlink (no mount: bwrap reads its mount table
// again after each one), anything else bound read-only (directories only
// when dirOnly). Nothing when p does not exist.
func appendLayout(a []string, p string, dirOnly bool) []string {
	fi, err := os.Lstat(p)
	switch {
	case err != nil:
	case fi.Mode()&os.ModeSymlink != 0:
		if target, err := os.Readlink(p); err == nil {
			a = append(a, "--symlink", target, p)
		}
	case fi.IsDir() || !dirOnly:
		a = append(a, "--ro-bind", p, p)
	}
	return a
}

// bwrapArgs builds bwrap's arguments for a sandbox of the default layout
// whose shell (innerScript) runs in work directory dir with environment
// env (each NAME=value). The result is a plain list so tests can check
// it. /tmp and /dev/shm hold at most tmpSize bytes each.
//
// Every bind mount costs bwrap a read and parse of the mount table (and
// the kernel its printing), so what need not be a mount is not: passwd
// and group are files made in bwrap's root, read-only with it.
func bwrapArgs(dir string, env []string, tmpSize int64) []string {
	a := []string{
		"--unshare-user", "--uid", strconv.Itoa(jobUID), "--gid", strconv.Itoa(jobGID),
		"--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--hostname", "sandbox",
		"--die-with-parent", "--new-session",
		"--disable-userns",
		"--info-fd", strconv.Itoa(fdInfo),
		"--block-fd", strconv.Itoa(fdSync),
		"--clearenv",
	}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		a = append(a, "--setenv", k, v)
	}
	a = append(a, systemLayout()...)
	a = append(a,
		"--perms", "0444", "--file", strconv.Itoa(fdPasswd), "/etc/passwd",
		"--perms", "0444", "--file", strconv.Itoa(fdGroup), "/etc/group",
		"--proc", "/proc",
		"--dev", "/dev",
		// Bounded even without a memory cgroup, which would count them.
		"--size", strconv.FormatInt(tmpSize, 10), "--tmpfs", "/tmp",
		"--size", strconv.FormatInt(tmpSize, 10), "--tmpfs", "/dev/shm",
		// bwrap's /dev is a tmpfs of its own: nothing to write there but
		// the devices and /dev/shm.
		"--remount-ro", "/dev",
		"--bind", dir, "/work",
		"--chdir", "/work",
		// The root is bwrap's tmpfs, the job's own: without this, files
		// could be made in /, /etc... (gone after the job, but outside
		// /work), and /etc/passwd changed.
		"--remount-ro", "/",
	)
	a = append(a, testExtraArgs...)
	return append(a, "--", "/bin/sh", "-c", innerScript, "sh")
}

// testExtraArgs are added to bwrap's options by tests (to make it fail).
var testExtraArgs []string

// bwrapPath is where bwrap is, looked up once.
var bwrapPath = sync.OnceValue(func() string {
	p, err := exec.LookPath("bwrap")
	if err != nil {
		return "bwrap"
	}
	return p
})

// availability is Available's cached answer.
var availability = sync.OnceValue(probe)

// Available reports whether sandboxes can be made here: bwrap is installed
// and can build a sandbox like Run's (it is tried once; the answer is
// cached). The error says what to do.
func Available() error { return availability() }

// probe runs `true` in a sandbox as Run would.
func probe() error {
	path, err := exec.LookPath("bwrap")
	if err != nil {
		return errors.New("sandbox: bwrap (bubblewrap) not found: install it (Debian: apt-get install bubblewrap)")
	}
	cmd := exec.Command(path,
		"--unshare-user", "--uid", strconv.Itoa(jobUID), "--gid", strconv.Itoa(jobGID),
		"--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
		"--die-with-parent", "--new-session", "--disable-userns",
		"--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
		"--", "/bin/true")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = sysProcAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("sandbox: bwrap cannot build a sandbox here (%s): unprivileged user namespaces must be allowed: "+
			"sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 on kernels that have it, "+
			"kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 24.04 and later)", msg)
	}
	return nil
}

// sysProcAttr is how the job's first process starts: in its own process
// group, killed if reshd dies, and, when reshd is root, as nobody.
//
// As root, bwrap --unshare-user --uid 65534 maps the job's uid to root
// outside: files it writes are root's, and a root-owned file reachable
// through a bind would be its own. So a root reshd drops to nobody before
// bwrap runs; bwrap then builds its user namespace unprivileged, and the
// job is nobody both inside and outside.
//
// Pdeathsig fires when the thread that started the process ends, not the
// process: Go ends threads only for goroutines that exit while locked to
// one, which reshd does not do around Run. --die-with-parent does the same
// for the sandbox's init towards bwrap.
func sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: jobUID, Gid: jobGID, Groups: []uint32{}}
	}
	return attr
}
