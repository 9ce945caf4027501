package lang

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuiltinByName(t *testing.T) {
	s := Builtin()
	assert.Equal(t, []string{"c", "c++", "java", "python", "sh"}, s.Names(), "the names executors have always advertised")

	c, ok := s.ByName("c")
	require.True(t, ok)
	assert.Equal(t, "main.c", c.Source)
	assert.Equal(t, []string{"gcc", "-std=c17", "-O2", "-o", "main", "{source}", "-lm"}, c.Compile)
	assert.Equal(t, []string{"./main"}, c.Run)

	cpp, ok := s.ByName("c++")
	require.True(t, ok)
	assert.Equal(t, []string{"g++", "-std=c++17", "-O2", "-o", "main", "{source}"}, cpp.Compile)

	py, ok := s.ByName("python")
	require.True(t, ok)
	assert.Empty(t, py.Compile)
	assert.Equal(t, []string{"python3", "{source}"}, py.Run)

	_, ok = s.ByName("go")
	assert.False(t, ok)
	_, ok = s.ByName("")
	assert.False(t, ok)
}

func TestBuiltinForFile(t *testing.T) {
	s := Builtin()
	for file, want := range map[string]string{
		"hello.c": "c", "dir/x.cpp": "c++", "a.b.cc": "c++", "Main.java": "java",
		"/tmp/p.py": "python", "run.sh": "sh",
	} {
		l, ok := s.ForFile(file)
		if assert.True(t, ok, file) {
			assert.Equal(t, want, l.Name, file)
		}
	}
	for _, file := range []string{"hello", "hello.C", "hello.go", "c", ".", "", "py."} {
		_, ok := s.ForFile(file)
		assert.False(t, ok, file)
	}
}

func TestSetIsNotChangedThroughItsLanguages(t *testing.T) {
	s := Builtin()
	c, _ := s.ByName("c")
	c.Compile[0] = "clang"
	c.Extensions[0] = ".x"
	c2, _ := s.ByName("c")
	assert.Equal(t, "gcc", c2.Compile[0])
	_, ok := s.ForFile("a.c")
	assert.True(t, ok)
}

func TestTools(t *testing.T) {
	s := Builtin()
	for name, want := range map[string][]string{
		"c": {"gcc"}, "c++": {"g++"}, "java": {"javac", "java"}, "python": {"python3"}, "sh": {"sh"},
	} {
		l, _ := s.ByName(name)
		assert.Equal(t, want, l.Tools(), name)
	}
	l := Language{Compile: []string{"/usr/bin/cc", "x"}, Run: []string{"bin/{class}"}}
	assert.Equal(t, []string{"/usr/bin/cc"}, l.Tools(), "relative paths and placeholders are the work directory's")
}

func TestPrepare(t *testing.T) {
	s := Builtin()
	c, _ := s.ByName("c")
	p, err := c.Prepare([]byte("int main(void){return 0;}"), "/work")
	require.NoError(t, err)
	assert.Equal(t, Program{
		Source:  "main.c",
		Compile: []string{"gcc", "-std=c17", "-O2", "-o", "main", "main.c", "-lm"},
		Run:     []string{"./main"},
	}, p)

	py, _ := s.ByName("python")
	p, err = py.Prepare([]byte("print(1)"), "/work")
	require.NoError(t, err)
	assert.Equal(t, Program{Source: "main.py", Run: []string{"python3", "main.py"}}, p)

	java, _ := s.ByName("java")
	p, err = java.Prepare([]byte("class A {}\npublic final class Hello { public static void main(String[] a) {} }"), "/work")
	require.NoError(t, err)
	assert.Equal(t, Program{
		Source:  "Hello.java",
		Compile: []string{"javac", "-encoding", "UTF-8", "Hello.java"},
		Run:     []string{"java", "-cp", ".", "Hello"},
	}, p)

	_, err = java.Prepare([]byte("// public class X\nvoid main() {}"), "/work")
	require.ErrorIs(t, err, ErrNoClass)
	assert.Contains(t, err.Error(), "no class found")

	g := Language{Name: "go", Source: "prog.go", Compile: []string{"go", "build", "-o", "{class}", "{source}"},
		Run: []string{"./{class}"}, Env: []string{"GOCACHE={dir}/.cache", "HOME={dir}"}}
	p, err = g.Prepare(nil, "/job/7")
	require.NoError(t, err)
	assert.Equal(t, Program{
		Source:  "prog.go",
		Compile: []string{"go", "build", "-o", "prog", "prog.go"},
		Run:     []string{"./prog"},
		Env:     []string{"GOCACHE=/job/7/.cache", "HOME=/job/7"},
	}, p)
}
