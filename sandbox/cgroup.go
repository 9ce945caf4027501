package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// useCgroups can be turned off by tests to exercise the rlimit fallback.
var useCgroups = true

// cgroupSeq makes cgroup names unique within this process.
var cgroupSeq atomic.Uint64

// cgroup is the job's own cgroup: one directory under cgroup v2, or one
// in each of the v1 memory and pids hierarchies.
type cgroup struct {
	v2      bool
	memory  string // directory holding the memory files
	pids    string // directory holding the pids files (same as memory in v2)
	cpuacct string // directory holding the CPU accounting files, "" if none

	// memoryMax and procsMax are the limits last set, which set does
	// not write again.
	memoryMax int64
	procsMax  int
}

// newCgroup makes a cgroup for one job, with l's memory (swap included)
// and process limits, under the cgroup reshd itself is in. It returns an
// error when none can be made (no permission, no controllers, cgroup v2
// without delegation); the caller falls back to rlimits.
func newCgroup(l Limits) (*cgroup, error) {
	name := fmt.Sprintf("resh-sandbox-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	if base, ok := cgroupV2BaseCached(); ok {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox: cgroup: %w", err)
		}
		cg := &cgroup{v2: true, memory: dir, pids: dir, cpuacct: dir, memoryMax: l.Memory, procsMax: l.Procs}
		err := writeFile(dir, "memory.max", strconv.FormatInt(l.Memory, 10))
		if err == nil {
			err = writeFile(dir, "pids.max", strconv.Itoa(l.Procs))
		}
		if err == nil {
			// No swap: the limit is on memory, not on memory not yet swapped.
			// The file is missing without swap accounting.
			if e := writeFile(dir, "memory.swap.max", "0"); e != nil && !errors.Is(e, os.ErrNotExist) {
				err = e
			}
		}
		if err != nil {
			cg.remove()
			return nil, err
		}
		return cg, nil
	}
	mem, err := cgroupV1DirCached("memory")
	if err != nil {
		return nil, err
	}
	pids, err := cgroupV1DirCached("pids")
	if err != nil {
		return nil, err
	}
	cg := &cgroup{memory: filepath.Join(mem, name), pids: filepath.Join(pids, name), memoryMax: l.Memory, procsMax: l.Procs}
	if err := os.Mkdir(cg.memory, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: cgroup: %w", err)
	}
	if err := os.Mkdir(cg.pids, 0o755); err != nil {
		os.Remove(cg.memory)
		return nil, fmt.Errorf("sandbox: cgroup: %w", err)
	}
	err = writeFile(cg.memory, "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10))
	if err == nil {
		if e := writeFile(cg.memory, "memory.memsw.limit_in_bytes", strconv.FormatInt(l.Memory, 10)); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = e
		}
	}
	if err == nil {
		err = writeFile(cg.pids, "pids.max", strconv.Itoa(l.Procs))
	}
	if err != nil {
		cg.remove()
		return nil, err
	}
	// CPU accounting is a bonus: without it, CPU time comes from the job.
	if acct, err := cgroupV1DirCached("cpuacct"); err == nil && os.Mkdir(filepath.Join(acct, name), 0o755) == nil {
		cg.cpuacct = filepath.Join(acct, name)
	}
	return cg, nil
}

// cgroupDirs caches cgroupV2Base and cgroupV1Dir: reading
// /proc/self/mountinfo at every job costs more than the rest of making a
// cgroup.
var cgroupDirs struct {
	sync.Mutex
	v2     *string
	v1     map[string]string
	v1Errs map[string]error
}

// cgroupV2BaseCached is cgroupV2Base, looked for once.
func cgroupV2BaseCached() (string, bool) {
	cgroupDirs.Lock()
	defer cgroupDirs.Unlock()
	if cgroupDirs.v2 == nil {
		b, ok := cgroupV2Base()
		if !ok {
			b = ""
		}
		cgroupDirs.v2 = &b
	}
	return *cgroupDirs.v2, *cgroupDirs.v2 != ""
}

// cgroupV1DirCached is cgroupV1Dir, looked for once per controller.
func cgroupV1DirCached(controller string) (string, error) {
	cgroupDirs.Lock()
	defer cgroupDirs.Unlock()
	if d, ok := cgroupDirs.v1[controller]; ok {
		return d, cgroupDirs.v1Errs[controller]
	}
	if cgroupDirs.v1 == nil {
		cgroupDirs.v1, cgroupDirs.v1Errs = map[string]string{}, map[string]error{}
	}
	d, err := cgroupV1Dir(controller)
	cgroupDirs.v1[controller], cgroupDirs.v1Errs[controller] = d, err
	return d, err
}

// cgroupV2Base returns the cgroup v2 directory where job cgroups can be
// made with the memory and pids controllers: reshd's own cgroup when its
// subtree_control has both (a delegated subtree) or can be given them.
func cgroupV2Base() (string, bool) {
	mnt, root := mountOf("cgroup2", "")
	if mnt == "" {
		return "", false
	}
	own := ownCgroup("")
	if own == "" || !strings.HasPrefix(own, root) {
		return "", false
	}
	base := filepath.Join(mnt, strings.TrimPrefix(own, root))
	ctl, err := os.ReadFile(filepath.Join(base, "cgroup.subtree_control"))
	if err != nil {
		return "", false
	}
	have := strings.Fields(string(ctl))
	need := []string{"memory", "pids"}
	for _, c := range need {
		if !slices.Contains(have, c) {
			// Fails with EBUSY when the cgroup holds processes (the no
			// internal process rule), which is the usual case: then
			// there is no v2 cgroup for us.
			if writeFile(base, "cgroup.subtree_control", "+"+c) != nil {
				return "", false
			}
		}
	}
	return base, true
}

// cgroupV1Dir returns the directory of reshd's own cgroup in the v1
// hierarchy of controller, or the hierarchy's mount point when that is not
// visible.
func cgroupV1Dir(controller string) (string, error) {
	mnt, root := mountOf("cgroup", controller)
	if mnt == "" {
		return "", fmt.Errorf("sandbox: no cgroup %s controller mounted", controller)
	}
	if own := ownCgroup(controller); own != "" && strings.HasPrefix(own, root) {
		dir := filepath.Join(mnt, strings.TrimPrefix(own, root))
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, nil
		}
	}
	return mnt, nil
}

// mountOf finds in /proc/self/mountinfo a mount of fstype ("cgroup" or
// "cgroup2") whose super options name controller (ignored for cgroup2),
// and returns its mount point and the cgroup path at its root.
func mountOf(fstype, controller string) (mnt, root string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 || b[0] != fstype {
			continue
		}
		if fstype == "cgroup" && !slices.Contains(strings.Split(b[2], ","), controller) {
			continue
		}
		return a[4], a[3]
	}
	return "", ""
}

// ownCgroup returns this process's cgroup path in the v1 hierarchy of
// controller, or in the v2 hierarchy when controller is "".
func ownCgroup(controller string) string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		// 4:memory:/a/b  or  0::/a/b
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if controller != "" && slices.Contains(strings.Split(parts[1], ","), controller) {
			return parts[2]
		}
	}
	return ""
}

// add moves process pid into the cgroup.
func (cg *cgroup) add(pid int) error {
	p := strconv.Itoa(pid)
	if err := writeFile(cg.memory, "cgroup.procs", p); err != nil {
		return err
	}
	if cg.v2 {
		return nil
	}
	if err := writeFile(cg.pids, "cgroup.procs", p); err != nil {
		return err
	}
	if cg.cpuacct != "" {
		return writeFile(cg.cpuacct, "cgroup.procs", p)
	}
	return nil
}

// cpu returns the CPU time used by the cgroup's processes, and whether the
// kernel says.
func (cg *cgroup) cpu() (time.Duration, bool) {
	if cg.cpuacct == "" {
		return 0, false
	}
	if cg.v2 {
		us := readKey(filepath.Join(cg.cpuacct, "cpu.stat"), "usage_usec")
		return time.Duration(us) * time.Microsecond, us > 0
	}
	b, err := os.ReadFile(filepath.Join(cg.cpuacct, "cpuacct.usage"))
	if err != nil {
		return 0, false
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(ns), err == nil
}

// procs lists the processes in the cgroup.
func (cg *cgroup) procs() []int {
	b, err := os.ReadFile(filepath.Join(cg.pids, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// kill sends SIGKILL to every process in the cgroup (cgroup.kill where the
// kernel has it, which also catches processes forking meanwhile).
func (cg *cgroup) kill() {
	if cg.v2 && writeFile(cg.pids, "cgroup.kill", "1") == nil {
		return
	}
	// The pids limit bounds how many new ones can appear while we kill.
	for range 3 {
		pids := cg.procs()
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// drain kills what is left in the cgroup and waits (up to d) for it to be
// empty. It reports whether it is.
func (cg *cgroup) drain(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if len(cg.procs()) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		cg.kill()
		time.Sleep(5 * time.Millisecond)
	}
}

// oomCount is how many processes of the cgroup the kernel killed for want
// of memory so far.
func (cg *cgroup) oomCount() int64 {
	file := "memory.oom_control"
	if cg.v2 {
		file = "memory.events"
	}
	return readKey(filepath.Join(cg.memory, file), "oom_kill")
}

// set gives the cgroup l's memory (swap included) and process limits, for
// the next command of its sandbox. Limits the cgroup has already are not
// written again.
func (cg *cgroup) set(l Limits) error {
	if l.Memory != cg.memoryMax {
		if err := cg.setMemory(l.Memory); err != nil {
			return err
		}
		cg.memoryMax = l.Memory
	}
	if l.Procs != cg.procsMax {
		if err := writeFile(cg.pids, "pids.max", strconv.Itoa(l.Procs)); err != nil {
			return err
		}
		cg.procsMax = l.Procs
	}
	return nil
}

func (cg *cgroup) setMemory(n int64) error {
	mem := strconv.FormatInt(n, 10)
	if cg.v2 {
		return writeFile(cg.memory, "memory.max", mem)
	}
	// The memory limit may not go above memory+swap's: when raising,
	// memsw must go first; when lowering, last.
	err := writeFile(cg.memory, "memory.limit_in_bytes", mem)
	if e := writeFile(cg.memory, "memory.memsw.limit_in_bytes", mem); e != nil && !errors.Is(e, os.ErrNotExist) {
		return e
	}
	if err != nil {
		return writeFile(cg.memory, "memory.limit_in_bytes", mem)
	}
	return nil
}

// cgMark is the cgroup's account before a command, to tell that
// command's share.
type cgMark struct {
	oom int64
	cpu time.Duration
}

// mark resets the peak memory (cgroup v1; v2's peak is the sandbox's
// whole life) and returns the account so far.
func (cg *cgroup) mark() cgMark {
	if !cg.v2 {
		_ = writeFile(cg.memory, "memory.max_usage_in_bytes", "0")
	}
	cpu, _ := cg.cpu()
	return cgMark{oom: cg.oomCount(), cpu: cpu}
}

// peak returns the cgroup's peak memory use, 0 when the kernel does not
// say.
func (cg *cgroup) peak() int64 {
	file := "memory.max_usage_in_bytes"
	if cg.v2 {
		file = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(cg.memory, file))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// remove deletes the cgroup's directories (it must be empty).
func (cg *cgroup) remove() {
	os.Remove(cg.memory)
	if !cg.v2 {
		os.Remove(cg.pids)
		if cg.cpuacct != "" {
			os.Remove(cg.cpuacct)
		}
	}
}

// readKey returns the value of "key N" in a flat-keyed cgroup file, 0 when
// absent.
func readKey(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

func writeFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sandbox: cgroup: %w", err)
	}
	return nil
}
