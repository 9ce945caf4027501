// Package access decides which client files the remote side of a resh
// session may reach through lcat and ltee, and opens them.
//
// The trust model: the server is not trusted with the client's machine. It
// reaches files under resh's working directory and under each path the
// user allowed with -allow (a directory, or one file), and among those:
//
//   - no hidden file or directory (a path component starting with '.')
//     unless an -allow names it, or a directory above it below the -allow;
//   - nothing in a protected directory (resh's key directory, ~/.ssh) unless
//     an -allow names that directory or a path inside it, even where a wider
//     -allow covers it;
//   - regular files only: a FIFO, a device or a socket only when an -allow
//     names that exact path;
//   - nothing at all with None (resh -no-files).
//
// Every file is opened through an os.Root, so neither ".." nor a symbolic
// link leads out of those paths, and the rules are checked again on the
// path the opened file really has, so a symbolic link does not lead around
// them either. Opening never blocks: files are opened non-blocking, checked,
// then made blocking again if they are regular.
package access

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"resh/internal/fserr"
)

// Errors returned by Open and Create, usable with errors.Is. The *Error that
// wraps them carries the message shown to the user.
var (
	// ErrOutside is returned for a path outside every allowed directory.
	ErrOutside = errors.New("outside the directories resh allows")
	// ErrNotExist is returned for a path that names no file.
	ErrNotExist = errors.New("no such file")
	// ErrHidden is returned for a hidden file, or a file in a hidden
	// directory, that no -allow names.
	ErrHidden = errors.New("hidden file")
	// ErrProtected is returned for a path in a protected directory (resh's
	// keys, ~/.ssh) that no -allow names exactly.
	ErrProtected = errors.New("in a protected directory")
	// ErrNotRegular is returned for a FIFO, device or socket that no -allow
	// names exactly.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNoFiles is returned for every path by the Dirs of None.
	ErrNoFiles = errors.New("file transfers are off (resh -no-files)")
)

// Error is a refused or failed Open or Create. Its message is meant for the
// user at the other end (lcat, ltee) and names the path as they typed it.
type Error struct {
	Path string
	Err  error
	// Detail completes the message: the hidden directory, the protected
	// directory, the kind of file.
	Detail string
	// Real is the path the file really has, when that is what broke a rule
	// (the path given is a symbolic link).
	Real string
}

func (e *Error) Error() string {
	switch {
	case errors.Is(e.Err, ErrNoFiles):
		return "refused: resh serves no files in this session (resh -no-files)"
	case errors.Is(e.Err, ErrOutside):
		return fmt.Sprintf("permission denied: %s is outside the directories resh allows (add one with -allow)", e.Path)
	case errors.Is(e.Err, ErrProtected) && e.Real != "":
		return fmt.Sprintf("refused: %s leads to %s, in %s (name it exactly with -allow to permit)", e.Path, e.Real, e.Detail)
	case errors.Is(e.Err, ErrProtected):
		return fmt.Sprintf("refused: %s is in %s (name it exactly with -allow to permit)", e.Path, e.Detail)
	case errors.Is(e.Err, ErrHidden) && e.Real != "":
		return fmt.Sprintf("refused: %s leads to %s, a hidden path (name it with -allow to permit)", e.Path, e.Real)
	case errors.Is(e.Err, ErrHidden) && e.Detail == "":
		return fmt.Sprintf("refused: hidden file %s (name it with -allow to permit)", e.Path)
	case errors.Is(e.Err, ErrHidden):
		return fmt.Sprintf("refused: %s is in hidden directory %s (name it with -allow to permit)", e.Path, e.Detail)
	case errors.Is(e.Err, ErrNotRegular):
		return fmt.Sprintf("refused: %s is a %s, not a regular file (name it with -allow to permit)", e.Path, e.Detail)
	case errors.Is(e.Err, ErrNotExist):
		return fmt.Sprintf("no such file: %s", e.Path)
	case errors.Is(e.Err, fs.ErrPermission):
		return fmt.Sprintf("permission denied: %s", e.Path)
	}
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		return fmt.Sprintf("%s: %v", e.Path, pe.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Protected is a directory no transfer reaches unless an -allow names it
// or a path inside it.
type Protected struct {
	Dir  string // absolute
	Name string // for the user: "resh's key directory /home/u/.resh", "~/.ssh"
}

// protectedDir is a Protected with its spellings (as given, symbolic links
// resolved).
type protectedDir struct {
	dirs []string
	Name string
}

// entry is the working directory or one -allow.
type entry struct {
	// dirs: a directory's spellings, absolute and cleaned (as given,
	// symbolic links resolved). names: a single file's.
	dirs, names []string
	base        string // a single file: its name in r
	named       bool   // given with -allow (the working directory is not)
	r           *os.Root
}

// Dirs is the set of paths the remote side may reach. It is safe for
// concurrent use.
type Dirs struct {
	cwd       string
	entries   []entry
	protected []protectedDir
	none      bool
}

// None returns Dirs that refuse every path (resh -no-files).
func None() *Dirs { return &Dirs{none: true} }

// New opens cwd (resh's working directory, against which relative paths are
// resolved) and every path in allow: a directory, or a single file (which
// need not exist yet, for ltee). A path that cannot be opened is an error.
// Nothing in the protected directories is reached unless an allow names it
// or a path inside it.
func New(cwd string, allow []string, protect ...Protected) (*Dirs, error) {
	absCwd, err := filepath.Abs(cwd)
	if err != nil {
		return nil, fmt.Errorf("cannot find the working directory: %w", err)
	}
	d := &Dirs{cwd: absCwd}
	for _, p := range protect {
		dir := filepath.Clean(p.Dir)
		d.protected = append(d.protected, protectedDir{dirs: spellings(dir, realDir(dir)), Name: p.Name})
	}
	for i, path := range append([]string{absCwd}, allow...) {
		abs := path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(absCwd, abs)
		}
		abs = filepath.Clean(abs)
		e, err := newEntry(abs, i > 0)
		if err != nil {
			d.Close()
			if i == 0 {
				return nil, fmt.Errorf("cannot open the working directory %s for lcat and ltee: %w", abs, fserr.Bare(err))
			}
			return nil, allowError(path, err)
		}
		d.entries = append(d.entries, e)
	}
	return d, nil
}

// allowError words a failure to open an -allow path for the user:
// "-allow /nope/x: no such directory /nope".
func allowError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
		return &wordedError{fmt.Sprintf("-allow %s: no such directory %s", path, pe.Path), err}
	}
	if errors.As(err, &pe) && pe.Path != path {
		return &wordedError{fmt.Sprintf("-allow %s: %s: %v", path, pe.Path, pe.Err), err}
	}
	return fmt.Errorf("-allow %s: %w", path, fserr.Bare(err))
}

// wordedError is err with a message of its own for the user.
type wordedError struct {
	msg string
	err error
}

func (e *wordedError) Error() string { return e.msg }
func (e *wordedError) Unwrap() error { return e.err }

// newEntry opens abs: a directory, or else a single file through its
// directory.
func newEntry(abs string, named bool) (entry, error) {
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	if st, err := os.Stat(abs); (err == nil && st.IsDir()) || !named {
		r, err := os.OpenRoot(abs)
		if err != nil {
			return entry{}, err
		}
		return entry{dirs: spellings(abs, real), named: named, r: r}, nil
	}
	r, err := os.OpenRoot(filepath.Dir(real))
	if err != nil {
		return entry{}, err
	}
	return entry{names: spellings(abs, real), base: filepath.Base(real), named: true, r: r}, nil
}

func spellings(abs, real string) []string {
	if real != abs {
		return []string{abs, real}
	}
	return []string{abs}
}

// Close closes every directory.
func (d *Dirs) Close() error {
	var errs []error
	for _, e := range d.entries {
		errs = append(errs, e.r.Close())
	}
	return errors.Join(errs...)
}

// Cwd returns the absolute working directory relative paths are resolved
// against.
func (d *Dirs) Cwd() string { return d.cwd }

// Open opens a file for reading. A relative path is relative to the working
// directory; an absolute one must lie under an allowed directory.
func (d *Dirs) Open(path string) (*os.File, error) {
	f, _, err := d.open(path, os.O_RDONLY)
	return f, err
}

// Create opens a file for writing, creating it with mode 0644 if needed; it
// truncates the file unless appendMode, which appends to it. A file it
// created and then refused is removed.
func (d *Dirs) Create(path string, appendMode bool) (*os.File, error) {
	flag := os.O_WRONLY
	if appendMode {
		flag |= os.O_APPEND
	}
	f, regular, err := d.open(path, flag)
	if err == nil && regular && !appendMode {
		if err := f.Truncate(0); err != nil {
			_ = f.Close()
			return nil, &Error{Path: path, Err: err}
		}
	}
	return f, err
}

// target is a path resolved to the entry serving it.
type target struct {
	e     *entry
	rel   string // the name in e.r
	named string // the path e was given as, that matched
	exact bool   // e names this very file
}

// resolve finds the entry serving abs (absolute and clean): the most
// precise one.
func (d *Dirs) resolve(abs string) (target, bool) {
	var best target
	score := -1
	for i := range d.entries {
		e := &d.entries[i]
		for _, n := range e.names {
			if n == abs {
				return target{e: e, rel: e.base, named: n, exact: true}, true
			}
		}
		for _, dir := range e.dirs {
			if rel, ok := under(dir, abs); ok && len(dir) > score {
				best, score = target{e: e, rel: rel, named: dir}, len(dir)
			}
		}
	}
	return best, score >= 0
}

// check applies the rules to abs, resolved to t. shown is the path as the
// user typed it; real, when abs is the path an opened file really has.
func (d *Dirs) check(shown, abs string, t target, real bool) error {
	via := ""
	if real {
		via = abs
	}
	for _, p := range d.protected {
		in, named := false, false
		for _, dir := range p.dirs {
			_, i := under(dir, abs)
			_, n := under(dir, t.named)
			in, named = in || i, named || n
		}
		if in && !(named && t.e.named) {
			return &Error{Path: shown, Err: ErrProtected, Detail: p.Name, Real: via}
		}
	}
	if t.exact {
		return nil
	}
	parts := strings.Split(t.rel, string(filepath.Separator))
	for i, c := range parts {
		if !strings.HasPrefix(c, ".") || c == "." || c == ".." {
			continue
		}
		e := &Error{Path: shown, Err: ErrHidden, Real: via}
		if i < len(parts)-1 {
			e.Detail = filepath.Join(parts[:i+1]...)
		}
		return e
	}
	return nil
}

// realDir resolves dir's symbolic links, if it exists.
func realDir(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return dir
}

// open opens path non-blocking with flag, creating it for writing, and
// checks it. It reports whether the file is regular (then blocking).
func (d *Dirs) open(path string, flag int) (*os.File, bool, error) {
	refuse := func(err error) (*os.File, bool, error) {
		if _, ok := err.(*Error); !ok {
			err = &Error{Path: path, Err: classify(err)}
		}
		return nil, false, err
	}
	if d.none {
		return refuse(&Error{Path: path, Err: ErrNoFiles})
	}
	if path == "" {
		return refuse(&Error{Path: path, Err: ErrNotExist})
	}
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.cwd, abs)
	}
	abs = filepath.Clean(abs)
	t, ok := d.resolve(abs)
	if !ok {
		return refuse(&Error{Path: path, Err: ErrOutside})
	}
	if err := d.check(path, abs, t, false); err != nil {
		return refuse(err)
	}
	rel := t.rel
	if strings.HasSuffix(path, "/") || strings.HasSuffix(path, "/.") {
		rel += "/" // as the system would: "file/" is not a directory
	}

	// Look before opening: opening a FIFO, even non-blocking, wakes up
	// whoever waits at its other end.
	if st, err := t.e.r.Stat(rel); err == nil {
		if err := d.kind(path, st.Mode(), t.exact); err != nil {
			return refuse(err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) || flag == os.O_RDONLY {
		return refuse(err)
	}

	created := false
	nb := syscall.O_NONBLOCK | syscall.O_NOCTTY
	f, err := t.e.r.OpenFile(rel, flag|nb, 0)
	if errors.Is(err, fs.ErrNotExist) && flag != os.O_RDONLY {
		f, err = t.e.r.OpenFile(rel, flag|nb|os.O_CREATE|os.O_EXCL, 0o644)
		created = err == nil
	}
	if err != nil {
		return refuse(err)
	}
	fail := func(err error) (*os.File, bool, error) {
		_ = f.Close()
		if created {
			_ = t.e.r.Remove(rel)
		}
		return refuse(err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := d.kind(path, st.Mode(), t.exact); err != nil {
		return fail(err)
	}
	// The rules again, on the path the file really has.
	if real := realPath(f, abs); real != abs {
		rt, ok := d.resolve(real)
		if !ok {
			return fail(&Error{Path: path, Err: ErrOutside})
		}
		if err := d.check(path, real, rt, true); err != nil {
			return fail(err)
		}
	}
	if !st.Mode().IsRegular() {
		return f, false, nil
	}
	if err := setBlocking(f); err != nil {
		return fail(err)
	}
	return f, true, nil
}

// kind refuses what is neither a regular file nor a directory (which
// opening or reading refuses), unless exact.
func (d *Dirs) kind(path string, mode fs.FileMode, exact bool) error {
	if mode.IsRegular() || mode.IsDir() || exact {
		return nil
	}
	what := "special file"
	switch {
	case mode&fs.ModeNamedPipe != 0:
		what = "FIFO"
	case mode&fs.ModeSocket != 0:
		what = "socket"
	case mode&fs.ModeDevice != 0:
		what = "device"
	}
	return &Error{Path: path, Err: ErrNotRegular, Detail: what}
}

// realPath is the path f really has: through /proc where there is one,
// else abs with its symbolic links resolved.
func realPath(f *os.File, abs string) string {
	var p string
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			p, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
		})
	}
	if filepath.IsAbs(p) {
		return p
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	return abs
}

// setBlocking clears O_NONBLOCK from a regular file.
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// under returns abs relative to dir when abs lies in dir.
func under(dir, abs string) (string, bool) {
	rel, err := filepath.Rel(dir, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// classify maps an os.Root error to ErrOutside or ErrNotExist when it is one.
func classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	case strings.Contains(err.Error(), "path escapes from parent"):
		// os.Root's (unexported) error for ".." or a symlink leading out.
		return fmt.Errorf("%w: %w", ErrOutside, err)
	}
	return err
}

// SetAside renames the file f, opened as path, to the first free name of
// path+suffix, path+suffix+".1", path+suffix+".2"… in its directory, and
// returns that name as the user would write it. It fails if path no
// longer names f.
func (d *Dirs) SetAside(path string, f *os.File, suffix string) (string, error) {
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.cwd, abs)
	}
	t, ok := d.resolve(filepath.Clean(abs))
	if !ok {
		return "", &Error{Path: path, Err: ErrOutside}
	}
	fst, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot set %s aside: %w", path, fserr.Bare(err))
	}
	if st, err := t.e.r.Lstat(t.rel); err != nil || !os.SameFile(st, fst) {
		return "", fmt.Errorf("cannot set %s aside: it was replaced meanwhile", path)
	}
	shown := strings.TrimSuffix(path, "/")
	for i := 0; i < 1000; i++ {
		add := suffix
		if i > 0 {
			add += "." + strconv.Itoa(i)
		}
		// A hard link fails if the name is taken, where a rename would
		// replace it.
		err := t.e.r.Link(t.rel, t.rel+add)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil { // no hard links here
			if _, lerr := t.e.r.Lstat(t.rel + add); lerr == nil {
				continue
			}
			if err := t.e.r.Rename(t.rel, t.rel+add); err != nil {
				return "", fmt.Errorf("cannot set %s aside: %w", path, fserr.Bare(err))
			}
			return shown + add, nil
		}
		if err := t.e.r.Remove(t.rel); err != nil {
			return "", fmt.Errorf("cannot set %s aside: %w", path, fserr.Bare(err))
		}
		return shown + add, nil
	}
	return "", fmt.Errorf("cannot set %s aside: no free name for %s%s", path, path, suffix)
}
