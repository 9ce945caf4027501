package lang

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// specExamples returns the ```ini blocks of spec.md.
func specExamples(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("spec.md")
	require.NoError(t, err)
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		blocks = append(blocks, m[1])
	}
	require.Len(t, blocks, 2)
	return blocks
}

func TestSpecExamplesParse(t *testing.T) {
	for _, b := range specExamples(t) {
		_, err := Parse(strings.NewReader(b), "spec.md", nil)
		assert.NoError(t, err)
	}
}

// helloOthers are hello programs in the languages spec.md's example adds.
var helloOthers = map[string]string{
	"hello.go": `package main

import (
	"bufio"
	"fmt"
	"os"
)

func main() {
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Printf("hello from Go %s %s4\n", os.Args[1], line)
}
`,
	"hello.rs": `use std::io::BufRead;
fn main() {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let arg = std::env::args().nth(1).unwrap();
    print!("hello from Rust {} {}4\n", arg, line);
}
`,
	"hello.js": `const line = require("fs").readFileSync(0, "utf8").split("\n")[0];
console.log("hello from Node " + process.argv[2] + " " + line + "\n4");
`,
}

// TestSpecExamplesRun compiles and runs a hello program in each language
// spec.md's example adds, where this machine has its tools, in a minimal
// environment as a sandbox would give.
func TestSpecExamplesRun(t *testing.T) {
	s, err := Parse(strings.NewReader(specExamples(t)[0]), "spec.md", nil)
	require.NoError(t, err)
	for file, src := range helloOthers {
		t.Run(file, func(t *testing.T) {
			t.Parallel() // after the tests that set PATH
			l, ok := s.ForFile(file)
			require.True(t, ok)
			if l.Name == "go" && testing.Short() {
				t.Skip("a cold go build takes seconds: not in -short")
			}
			var path []string
			for _, tool := range l.Tools() {
				p, err := exec.LookPath(tool)
				if err != nil {
					t.Skipf("%s is not installed here", tool)
				}
				path = append(path, filepath.Dir(p))
			}
			dir := t.TempDir()
			p, err := l.Prepare([]byte(src), dir)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, p.Source), []byte(src), 0o600))
			env := append([]string{"PATH=" + strings.Join(append(path, "/usr/bin", "/bin"), ":")}, p.Env...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if len(p.Compile) > 0 {
				cmd := exec.CommandContext(ctx, p.Compile[0], p.Compile[1:]...)
				cmd.Dir, cmd.Env = dir, env
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s: %s", p.Compile, out)
			}
			run := append(p.Run, "arg1")
			cmd := exec.CommandContext(ctx, run[0], run[1:]...)
			cmd.Dir, cmd.Env = dir, env
			cmd.Stdin = strings.NewReader("input1\n")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s: %s", run, out)
			assert.Regexp(t, `^hello from \S+ arg1 input1\n4\n$`, string(out))
		})
	}
}
