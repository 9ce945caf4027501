// Package access decides which client files the remote side of a resh
// session may reach through lcat and ltee: those under resh's working
// directory and under each directory the user allowed with -allow. Every
// file is opened through an os.Root, so neither ".." nor a symbolic link
// leads out of those directories.
package access

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors returned by Open and Create, usable with errors.Is. The *Error that
// wraps them carries the message shown to the user.
var (
	// ErrOutside is returned for a path outside every allowed directory.
	ErrOutside = errors.New("access: outside the allowed directories")
	// ErrNotExist is returned for a path that names no file.
	ErrNotExist = errors.New("access: no such file")
)

// Error is a refused or failed Open or Create. Its message is meant for the
// user at the other end (lcat, ltee) and names the path as they typed it.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case errors.Is(e.Err, ErrOutside):
		return fmt.Sprintf("permission denied: %s is outside the directories resh allows (add one with -allow)", e.Path)
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

// root is one allowed directory.
type root struct {
	dirs []string // absolute, cleaned spellings of the directory (as given, symlinks resolved)
	r    *os.Root
}

// Dirs is the set of directories the remote side may reach. It is safe for
// concurrent use.
type Dirs struct {
	cwd   string
	roots []root
}

// New opens cwd (resh's working directory, against which relative paths are
// resolved) and every directory in allow. A directory that cannot be opened
// is an error.
func New(cwd string, allow []string) (*Dirs, error) {
	absCwd, err := filepath.Abs(cwd)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	d := &Dirs{cwd: absCwd}
	for _, dir := range append([]string{cwd}, allow...) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("access: %w", err)
		}
		r, err := os.OpenRoot(abs)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("access: allowed directory: %w", err)
		}
		rt := root{dirs: []string{abs}, r: r}
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			rt.dirs = append(rt.dirs, real)
		}
		d.roots = append(d.roots, rt)
	}
	return d, nil
}

// Close closes every directory.
func (d *Dirs) Close() error {
	var errs []error
	for _, rt := range d.roots {
		errs = append(errs, rt.r.Close())
	}
	return errors.Join(errs...)
}

// Cwd returns the absolute working directory relative paths are resolved
// against.
func (d *Dirs) Cwd() string { return d.cwd }

// Open opens a file for reading. A relative path is relative to the working
// directory; an absolute one must lie under an allowed directory.
func (d *Dirs) Open(path string) (*os.File, error) {
	return d.openFile(path, os.O_RDONLY, 0)
}

// Create opens a file for writing, creating it with mode 0644 if needed; it
// truncates the file unless appendMode, which appends to it.
func (d *Dirs) Create(path string, appendMode bool) (*os.File, error) {
	flag := os.O_WRONLY | os.O_CREATE
	if appendMode {
		flag |= os.O_APPEND
	} else {
		flag |= os.O_TRUNC
	}
	return d.openFile(path, flag, 0o644)
}

func (d *Dirs) openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	if path == "" {
		return nil, &Error{Path: path, Err: ErrNotExist}
	}
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.cwd, abs)
	}
	abs = filepath.Clean(abs)
	for _, rt := range d.roots {
		for _, dir := range rt.dirs {
			rel, ok := under(dir, abs)
			if !ok {
				continue
			}
			f, err := rt.r.OpenFile(rel, flag, perm)
			if err != nil {
				return nil, &Error{Path: path, Err: classify(err)}
			}
			return f, nil
		}
	}
	return nil, &Error{Path: path, Err: ErrOutside}
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
