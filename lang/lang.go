// Package lang is the set of languages an executor can compile and run
// submitted programs in: each by name ("c", "c++", "java", "python",
// "sh") and by file extension, with the file the program is written as
// and the compile, run and version commands, all as argument vectors (no
// shell).
//
// Builtin gives the built-in languages; Load lays a languages file
// (RESH_HOME/languages, format in spec.md) over them, adding languages or
// changing built-in ones. Set.Detect finds which of them this machine has
// the programs for, with their versions, for an executor to advertise.
// Language.Prepare turns one submitted program into the file name to
// write it as and the commands to run in its work directory; running them
// (in a sandbox) is the job runner's business, not this package's.
package lang

import (
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Placeholders in commands, env values and Source, replaced by Prepare.
const (
	// PlaceSource is the file the program is written as, e.g. "main.c".
	PlaceSource = "{source}"
	// PlaceClass is the program's class: for a Source holding {class},
	// the class found in the program (Java rules, see JavaClass); for any
	// other, Source without its extension, e.g. "main".
	PlaceClass = "{class}"
	// PlaceDir is the work directory's absolute path as the commands see
	// it, given to Prepare.
	PlaceDir = "{dir}"
)

// Errors.
var (
	// ErrNoClass is Prepare's error for a program whose language names
	// its file after a class ({class} in Source) when the program
	// declares none.
	ErrNoClass = errors.New("no class found in the program: declare one, e.g. public class Main { public static void main(String[] args) { ... } }")
)

// Language is one language: how a program in it is written, compiled and
// run. Commands are argument vectors run in the program's work directory
// without a shell; their words may hold the placeholders {source},
// {class} and {dir}.
type Language struct {
	// Name is what the language is asked for by and advertised as, e.g.
	// "c", "c++", "java", "python", "sh".
	Name string
	// Extensions are the file extensions, dot included, that select the
	// language, e.g. ".cpp", ".cc". May be empty: then only by name.
	Extensions []string
	// Source is the file the program is written as in the work
	// directory, e.g. "main.c"; "{class}.java" names it after the class
	// the program declares (see JavaClass).
	Source string
	// Compile is the command compiling the program, empty when the
	// language has no compile step.
	Compile []string
	// Run is the command running the program; the program's arguments
	// are appended to it.
	Run []string
	// Version is a command printing the toolchain's version on its first
	// line, empty when there is none.
	Version []string
	// Env holds NAME=VALUE variables added to the environment of the
	// compile and run commands, e.g. GOCACHE={dir}/.cache.
	Env []string
}

// Program is one submitted program made ready to compile and run: every
// placeholder replaced.
type Program struct {
	// Source is the file name to write the program as in the work
	// directory.
	Source string
	// Compile is the compile command, nil when there is none.
	Compile []string
	// Run is the run command; the caller appends the program's arguments.
	Run []string
	// Env holds NAME=VALUE variables to add to the commands' environment.
	Env []string
}

// Prepare makes src, a program in l, ready to compile and run in a work
// directory that the commands see as dir (an absolute path): the file
// name to write it as and the commands. For a Source holding {class}
// (Java) the class is found in src with JavaClass; it fails with
// ErrNoClass when there is none.
func (l Language) Prepare(src []byte, dir string) (Program, error) {
	class := strings.TrimSuffix(l.Source, filepath.Ext(l.Source))
	source := l.Source
	if strings.Contains(l.Source, PlaceClass) {
		c, err := JavaClass(src)
		if err != nil {
			return Program{}, err
		}
		class = c
		source = strings.ReplaceAll(l.Source, PlaceClass, class)
	}
	r := strings.NewReplacer(PlaceSource, source, PlaceClass, class, PlaceDir, dir)
	expand := func(argv []string) []string {
		if len(argv) == 0 {
			return nil
		}
		out := make([]string, len(argv))
		for i, w := range argv {
			out[i] = r.Replace(w)
		}
		return out
	}
	return Program{Source: source, Compile: expand(l.Compile), Run: expand(l.Run), Env: expand(l.Env)}, nil
}

// Tools are the programs l needs on the machine: the first word of its
// compile and run commands, each once, except words naming a file in the
// work directory (relative paths such as ./main, or holding a
// placeholder), which the compile step makes.
func (l Language) Tools() []string {
	var tools []string
	for _, argv := range [][]string{l.Compile, l.Run} {
		if len(argv) == 0 {
			continue
		}
		t := argv[0]
		if strings.Contains(t, "{") || (strings.Contains(t, "/") && !filepath.IsAbs(t)) {
			continue
		}
		if !slices.Contains(tools, t) {
			tools = append(tools, t)
		}
	}
	return tools
}

// clone is l with slices of its own.
func (l Language) clone() Language {
	l.Extensions = slices.Clone(l.Extensions)
	l.Compile = slices.Clone(l.Compile)
	l.Run = slices.Clone(l.Run)
	l.Version = slices.Clone(l.Version)
	l.Env = slices.Clone(l.Env)
	return l
}

// Set is a set of languages by name and by extension. A Set is not
// changed once made and may be used from several goroutines.
type Set struct {
	byName map[string]Language
	byExt  map[string]string // extension → name
}

// newSet is a Set of langs, whose names and extensions must be distinct.
func newSet(langs []Language) *Set {
	s := &Set{byName: make(map[string]Language), byExt: make(map[string]string)}
	for _, l := range langs {
		s.byName[l.Name] = l.clone()
		for _, e := range l.Extensions {
			s.byExt[e] = l.Name
		}
	}
	return s
}

// ByName returns the language called name.
func (s *Set) ByName(name string) (Language, bool) {
	l, ok := s.byName[name]
	if !ok {
		return Language{}, false
	}
	return l.clone(), true
}

// ForFile returns the language of the file called name by its extension
// (matched exactly: ".C" is not ".c").
func (s *Set) ForFile(name string) (Language, bool) {
	ext := filepath.Ext(name)
	if ext == "" {
		return Language{}, false
	}
	n, ok := s.byExt[ext]
	if !ok {
		return Language{}, false
	}
	return s.ByName(n)
}

// Names returns the names of the languages in s, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the languages in s, sorted by name.
func (s *Set) All() []Language {
	var all []Language
	for _, n := range s.Names() {
		all = append(all, s.byName[n].clone())
	}
	return all
}
