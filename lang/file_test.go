package lang

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goodFile = `# Languages of this executor.

[go]
extensions = .go
source = main.go
compile = go build -o main main.go
run = ./main
version = go version
env = GOCACHE={dir}/.cache/go HOME={dir} GOFLAGS=-mod=mod

  [c]
  # C11 with warnings; the rest as built in.
  compile = gcc -std=c11 -O2 -Wall "-DGREETING=\"hello world\"" -o main {source} -lm

[rust]
extensions = .rs
compile = rustc -O -o main {source}
run = ./main
version = rustc --version

[node]
extensions = .js .mjs
run = node '{source}'
version = node --version
`

func TestLoadGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	require.NoError(t, os.WriteFile(path, []byte(goodFile), 0o600))
	s, err := Load(path, Builtin())
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "c++", "go", "java", "node", "python", "rust", "sh"}, s.Names())

	g, ok := s.ForFile("hello.go")
	require.True(t, ok)
	assert.Equal(t, Language{
		Name:       "go",
		Extensions: []string{".go"},
		Source:     "main.go",
		Compile:    []string{"go", "build", "-o", "main", "main.go"},
		Run:        []string{"./main"},
		Version:    []string{"go", "version"},
		Env:        []string{"GOCACHE={dir}/.cache/go", "HOME={dir}", "GOFLAGS=-mod=mod"},
	}, g)

	c, ok := s.ForFile("x.c")
	require.True(t, ok)
	assert.Equal(t, []string{"gcc", "-std=c11", "-O2", "-Wall", `-DGREETING="hello world"`, "-o", "main", "{source}", "-lm"}, c.Compile)
	assert.Equal(t, []string{"./main"}, c.Run, "keys not set keep the built-in values")
	assert.Equal(t, "main.c", c.Source)
	assert.Equal(t, []string{".c"}, c.Extensions)

	r, _ := s.ByName("rust")
	assert.Equal(t, "main.rs", r.Source, "source defaults to main and the first extension")
	n, _ := s.ForFile("x.mjs")
	assert.Equal(t, "node", n.Name)
	assert.Equal(t, []string{"node", "{source}"}, n.Run)
	assert.Empty(t, n.Compile)

	// The base is not changed.
	c, _ = Builtin().ByName("c")
	assert.Equal(t, "-std=c17", c.Compile[1])
}

func TestLoadMissingFile(t *testing.T) {
	base := Builtin()
	s, err := Load(filepath.Join(t.TempDir(), "none"), base)
	require.NoError(t, err)
	assert.Same(t, base, s)

	s, err = Load(filepath.Join(t.TempDir(), "none"), nil)
	require.NoError(t, err)
	assert.Equal(t, Builtin().Names(), s.Names(), "nil stands for the built-ins")
}

func TestLoadUnreadable(t *testing.T) {
	_, err := Load(t.TempDir(), nil) // a directory
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot read the languages file")
}

func TestParseChanges(t *testing.T) {
	parse := func(text string) *Set {
		t.Helper()
		s, err := Parse(strings.NewReader(text), "languages", nil)
		require.NoError(t, err)
		return s
	}

	// An extension a section claims leaves the language that had it.
	s := parse("[c99]\nextensions = .c .h\nsource = main.c\ncompile = gcc -std=c99 -o main main.c\nrun = ./main\n")
	l, _ := s.ForFile("a.c")
	assert.Equal(t, "c99", l.Name)
	c, _ := s.ByName("c")
	assert.Empty(t, c.Extensions, "c lost .c to c99")

	// c++ keeps .cpp but gives .cc away; c++ may take .cxx.
	s = parse("[c++]\nextensions = .cpp .cxx\n[cc]\nextensions=.cc\nrun=./a.out\ncompile=cc {source}\n")
	l, _ = s.ForFile("a.cc")
	assert.Equal(t, "cc", l.Name)
	l, _ = s.ForFile("a.cxx")
	assert.Equal(t, "c++", l.Name)
	assert.Equal(t, "main.cpp", l.Source, "a built-in keeps its source")

	// Empty values: no compile step, no version, by name only.
	s = parse("[python]\nversion =\nextensions =\nrun = python3 -I {source}\n")
	l, ok := s.ByName("python")
	require.True(t, ok)
	assert.Empty(t, l.Version)
	assert.Empty(t, l.Extensions)
	assert.Equal(t, []string{"python3", "-I", "{source}"}, l.Run)
	_, ok = s.ForFile("a.py")
	assert.False(t, ok)

	s = parse("[c]\ncompile =\nrun = tcc -run {source}\n")
	l, _ = s.ByName("c")
	assert.Empty(t, l.Compile)

	// A byte-order mark, CRLF and empty file.
	s = parse("\uFEFF[x]\r\nrun = ./x\r\nsource = x\r\n")
	l, ok = s.ByName("x")
	require.True(t, ok)
	assert.Equal(t, []string{"./x"}, l.Run)
	assert.Equal(t, Builtin().Names(), parse("").Names())
	assert.Equal(t, Builtin().Names(), parse("# nothing\n\n").Names())
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"key before a section", "run = x", 1, "before any [NAME] section"},
		{"no =", "[go]\nrun ./main", 2, "want KEY = VALUE"},
		{"unclosed header", "[go\nrun = x", 1, "closing ]"},
		{"empty name", "[]\n", 1, "needs a language name"},
		{"bad name", "[Go Lang]\n", 1, `bad language name "Go Lang"`},
		{"long name", "[" + strings.Repeat("a", 33) + "]\n", 1, "longer than 32"},
		{"duplicate section", "[go]\nrun = x\n\n[go]\nrun = y\n", 4, "[go] again (first at line 1)"},
		{"unknown key", "[go]\nrun = x\nbuild = y\n", 3, `unknown key "build"`},
		{"duplicate key", "[go]\nrun = x\nrun = y\n", 3, "run set again in [go] (first at line 2)"},
		{"empty run", "[c]\nrun =\n", 2, "run is empty"},
		{"no run", "[go]\nextensions = .go\n", 1, "[go] has no run command"},
		{"no source nor extension", "[go]\nrun = ./x\n", 1, "neither source nor extensions"},
		{"extension without dot", "[go]\nextensions = go\nrun = x\n", 2, `bad extension "go"`},
		{"lone dot", "[go]\nextensions = .\nrun = x\n", 2, `bad extension "."`},
		{"two dots", "[go]\nextensions = .a.b\nrun = x\n", 2, `bad extension ".a.b"`},
		{"slash", "[go]\nextensions = ./go\nrun = x\n", 2, `bad extension "./go"`},
		{"extension twice", "[go]\nextensions = .go .go\nrun = x\n", 2, ".go twice"},
		{"extension in two sections", "[a]\nextensions = .x\nrun = a\n[b]\nrun = b\nextensions = .x\n", 6, ".x is [a]'s already"},
		{"source with a slash", "[go]\nsource = src/main.go\nrun = x\n", 2, "not a plain file name"},
		{"source dot-dot", "[go]\nsource = ..\nrun = x\n", 2, `bad file name ".."`},
		{"source two words", "[go]\nsource = a b\nrun = x\n", 2, "want one file name"},
		{"source empty", "[go]\nsource =\nrun = x\n", 2, "want one file name"},
		{"source placeholder", "[go]\nsource = {source}\nrun = x\n", 2, "only {class}"},
		{"unbalanced single quote", "[go]\nsource = a\nrun = sh -c 'echo hi\n", 3, "run: a single quote not closed"},
		{"unbalanced double quote", "[go]\nsource = a\ncompile = cc \"-DX=1\n", 3, "compile: a double quote not closed"},
		{"trailing backslash", "[go]\nsource = a\nrun = x \\\n", 3, "backslash at the end of the line"},
		{"bad env", "[go]\nsource = a\nrun = x\nenv = GOCACHE\n", 4, `env: want NAME=VALUE, not "GOCACHE"`},
		{"bad env name", "[go]\nsource = a\nrun = x\nenv = 1X=y\n", 4, `bad variable name "1X"`},
		{"long line", "[go]\nrun = " + strings.Repeat("x", 70000) + "\n", 2, "longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text), "/home/u/.resh/languages", nil)
			require.Error(t, err)
			var fe *FileError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.line, fe.Line, "%v", err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "/home/u/.resh/languages:"), err.Error())
		})
	}
}

func TestLoadBadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	require.NoError(t, os.WriteFile(path, []byte("[go]\nrun = 'x\n"), 0o600))
	_, err := Load(path, nil)
	require.EqualError(t, err, path+":2: run: a single quote not closed (from \"'x\")")
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		"":                       nil,
		"   \t ":                 nil,
		"a":                      {"a"},
		"  a  b\tc ":             {"a", "b", "c"},
		`'a b' "c d"`:            {"a b", "c d"},
		`a'b c'd`:                {"ab cd"},
		`''`:                     {""},
		`"" x`:                   {"", "x"},
		`'$HOME' "$HOME" ~ *`:    {"$HOME", "$HOME", "~", "*"},
		`"a \"b\" \\ \n"`:        {`a "b" \ \n`},
		`'it''s'`:                {"its"},
		`'\'`:                    {`\`},
		`a\ b \'c`:               {"a b", "'c"},
		`-DX="1 2" #not-comment`: {"-DX=1 2", "#not-comment"},
	} {
		got, err := splitWords(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{`'`, `"`, `a 'b`, `"a\"`, `a\`} {
		_, err := splitWords(in)
		assert.Error(t, err, in)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("[go]\nrun = 'x\n"))
	f.Add([]byte("[c]\ncompile =\n[c]\n"))
	f.Add([]byte("\uFEFF[x]\r\nextensions = .c .x\r\nrun = \"a\\\"\" b\\ c\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(strings.NewReader(string(data)), "languages", nil)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FileError: %v", err)
			}
			return
		}
		for _, l := range s.All() {
			if len(l.Run) == 0 || l.Source == "" {
				t.Fatalf("%q: %s has no run command or no source", data, l.Name)
			}
			for _, e := range l.Extensions {
				if got, ok := s.ForFile("x" + e); !ok || got.Name != l.Name {
					t.Fatalf("%q: x%s is not %s's", data, e, l.Name)
				}
			}
		}
	})
}
