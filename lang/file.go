package lang

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// FileName is the languages file's name in RESH_HOME.
const FileName = "languages"

// keys are the keys a section of a languages file may set.
var keys = []string{"extensions", "source", "compile", "run", "version", "env"}

// FileError is a fault in a languages file, at a line.
type FileError struct {
	File string // the file's name
	Line int    // 1-based; 0 when the fault is the file's as a whole
	Msg  string // what is wrong
}

// Error returns "FILE:LINE: MSG".
func (e *FileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Load returns base with the languages file at path laid over it (format
// in spec.md); a nil base stands for Builtin(). A missing file is no
// error: then it returns base. A bad one is, a *FileError naming the line
// and what is wrong.
func Load(path string, base *Set) (*Set, error) {
	if base == nil {
		base = Builtin()
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return base, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the languages file: %w", err)
	}
	return Parse(bytes.NewReader(data), path, base)
}

// section is one [name] of a languages file being read.
type section struct {
	name string
	line int               // of its header
	set  map[string]string // key → value
	at   map[string]int    // key → line
}

// Parse is Load reading the languages file from r; name is the file's
// name for errors.
func Parse(r io.Reader, name string, base *Set) (*Set, error) {
	if base == nil {
		base = Builtin()
	}
	fail := func(line int, format string, args ...any) error {
		return &FileError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	var (
		sections []*section
		cur      *section
		sc       = bufio.NewScanner(r)
		n        int
	)
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimSpace(strings.TrimPrefix(line, "\uFEFF"))
		}
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fail(n, "a section header is [NAME], with the closing ]")
			}
			lname := strings.TrimSpace(line[1 : len(line)-1])
			if err := checkName(lname); err != nil {
				return nil, fail(n, "%v", err)
			}
			for _, s := range sections {
				if s.name == lname {
					return nil, fail(n, "[%s] again (first at line %d): give each language one section", lname, s.line)
				}
			}
			cur = &section{name: lname, line: n, set: map[string]string{}, at: map[string]int{}}
			sections = append(sections, cur)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fail(n, "want KEY = VALUE, [NAME] or a # comment, not %q", line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if cur == nil {
				return nil, fail(n, "%s = ... before any [NAME] section: start with the language's name in brackets", k)
			}
			if !slices.Contains(keys, k) {
				return nil, fail(n, "unknown key %q (want %s)", k, strings.Join(keys, ", "))
			}
			if at, dup := cur.at[k]; dup {
				return nil, fail(n, "%s set again in [%s] (first at line %d)", k, cur.name, at)
			}
			cur.set[k], cur.at[k] = v, n
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail(n+1, "line longer than 64 KiB")
		}
		return nil, fmt.Errorf("cannot read the languages file %s: %w", name, err)
	}

	langs := make(map[string]Language)
	for _, n := range base.Names() {
		langs[n], _ = base.ByName(n)
	}
	claimed := make(map[string]string) // extension → section claiming it
	for _, s := range sections {
		l, err := s.language(langs[s.name], fail)
		if err != nil {
			return nil, err
		}
		if _, ok := s.at["extensions"]; ok {
			for _, e := range l.Extensions {
				if other, ok := claimed[e]; ok {
					return nil, fail(s.at["extensions"], "%s is [%s]'s already: give each extension to one language", e, other)
				}
				claimed[e] = s.name
			}
		}
		langs[s.name] = l
	}
	// An extension a section claims leaves the language that had it.
	var all []Language
	for _, l := range langs {
		l.Extensions = slices.DeleteFunc(l.Extensions, func(e string) bool {
			owner, ok := claimed[e]
			return ok && owner != l.Name
		})
		all = append(all, l)
	}
	return newSet(all), nil
}

// language is l, the language of that name in the base set (zero if
// none), with s's keys set.
func (s *section) language(l Language, fail func(int, string, ...any) error) (Language, error) {
	isNew := l.Name == ""
	l.Name = s.name
	words := func(k string) ([]string, int, bool, error) {
		v, ok := s.set[k]
		if !ok {
			return nil, 0, false, nil
		}
		w, err := splitWords(v)
		if err != nil {
			return nil, s.at[k], true, fail(s.at[k], "%s: %v", k, err)
		}
		return w, s.at[k], true, nil
	}
	if w, at, ok, err := words("extensions"); err != nil {
		return l, err
	} else if ok {
		l.Extensions = nil
		for _, e := range w {
			if err := checkExt(e); err != nil {
				return l, fail(at, "extensions: %v", err)
			}
			if slices.Contains(l.Extensions, e) {
				return l, fail(at, "extensions: %s twice", e)
			}
			l.Extensions = append(l.Extensions, e)
		}
	}
	if w, at, ok, err := words("source"); err != nil {
		return l, err
	} else if ok {
		if len(w) != 1 {
			return l, fail(at, "source: want one file name, e.g. main.go, not %d words", len(w))
		}
		if err := checkSource(w[0]); err != nil {
			return l, fail(at, "source: %v", err)
		}
		l.Source = w[0]
	}
	for _, k := range []string{"compile", "run", "version"} {
		w, at, ok, err := words(k)
		if err != nil {
			return l, err
		}
		if !ok {
			continue
		}
		if k == "run" && len(w) == 0 {
			return l, fail(at, "run is empty: a language needs the command that runs its program, e.g. run = ./main")
		}
		switch k {
		case "compile":
			l.Compile = w
		case "run":
			l.Run = w
		case "version":
			l.Version = w
		}
	}
	if w, at, ok, err := words("env"); err != nil {
		return l, err
	} else if ok {
		for _, kv := range w {
			if err := checkEnv(kv); err != nil {
				return l, fail(at, "env: %v", err)
			}
		}
		l.Env = w
	}
	if isNew {
		if len(l.Run) == 0 {
			return l, fail(s.line, "[%s] has no run command: add run = ... (the command that runs the program)", s.name)
		}
		if l.Source == "" {
			if len(l.Extensions) == 0 {
				return l, fail(s.line, "[%s] has neither source nor extensions: add source = FILE (e.g. main.go)", s.name)
			}
			l.Source = "main" + l.Extensions[0]
		}
	}
	return l, nil
}

// checkName checks a language's name: lowercase letters, digits and
// + - . _ #, starting with a letter or digit.
func checkName(n string) error {
	if n == "" {
		return errors.New("a section needs a language name, e.g. [go]")
	}
	for i, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && strings.ContainsRune("+-._#", r)
		if !ok {
			return fmt.Errorf("bad language name %q: use lowercase letters, digits and + - . _ #, starting with a letter or digit", n)
		}
	}
	if len(n) > 32 {
		return fmt.Errorf("language name %q longer than 32 characters", n)
	}
	return nil
}

// checkExt checks an extension: a dot then letters, digits, _, + or -.
func checkExt(e string) error {
	if len(e) < 2 || e[0] != '.' {
		return fmt.Errorf("bad extension %q: an extension starts with a dot, e.g. .go", e)
	}
	for _, r := range e[1:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+-", r)) {
			return fmt.Errorf("bad extension %q: after the dot, only letters, digits, _ + -", e)
		}
	}
	return nil
}

// checkSource checks a source file name: one name in the work directory,
// which may hold {class}.
func checkSource(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return fmt.Errorf("bad file name %q", s)
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Errorf("%q is not a plain file name: the program is written in the work directory, name it e.g. main.go", s)
	case strings.Contains(s, PlaceSource) || strings.Contains(s, PlaceDir):
		return fmt.Errorf("%q: only {class} may stand in the file name", s)
	}
	return nil
}

// checkEnv checks a NAME=VALUE word.
func checkEnv(kv string) error {
	k, _, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, not %q", kv)
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("bad variable name %q in %q", k, kv)
		}
	}
	return nil
}

// splitWords splits s into words as a shell would, without any
// expansion: words are separated by spaces and tabs; within 'single
// quotes' every character stands for itself; within "double quotes" a
// backslash escapes only " and \; elsewhere a backslash escapes the next
// character. Quotes may join parts of a word (a'b c'd is one word), and
// ” is an empty word.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		w     strings.Builder
		in    bool // inside a word
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("a single quote not closed (from %q)", s[i:])
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				w.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("a double quote not closed")
			}
			in = true
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("a backslash at the end of the line: nothing to escape (lines do not continue)")
			}
			i++
			w.WriteByte(s[i])
			in = true
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}
