package lang

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hello are programs printing a greeting, their first argument and their
// first line of input, by file name.
var hello = map[string]string{
	"hello.c": `#include <stdio.h>
#include <math.h>
int main(int argc, char **argv) {
	char line[100] = "";
	fgets(line, sizeof line, stdin);
	printf("hello from C %s %s%.0f\n", argc > 1 ? argv[1] : "-", line, sqrt(16.0));
	return 0;
}
`,
	"hello.cc": `#include <iostream>
#include <string>
int main(int argc, char **argv) {
	std::string line;
	std::getline(std::cin, line);
	auto n = 4;
	std::cout << "hello from C++ " << (argc > 1 ? argv[1] : "-") << " " << line << "\n" << n << "\n";
}
`,
	"hello.py": `import sys
print("hello from Python", sys.argv[1], sys.stdin.readline(), end="")
print(4)
`,
	"hello.sh": `read line
echo "hello from sh $1 $line"
echo 4
`,
	"Hello.java": `import java.util.Scanner;

/* The file is named after the public class: public class Wrong {} */
class Helper { static String greet() { return "hello from Java"; } }

public class Greeter {
	public static void main(String[] args) {
		String line = new Scanner(System.in).nextLine();
		System.out.println(Helper.greet() + " " + args[0] + " " + line);
		System.out.println(4);
	}
}
`,
}

// TestCompileAndRun compiles and runs each hello program with the
// built-in language of its extension, by Prepare's commands, in a
// temporary directory (no sandbox: that is the job runner's).
func TestCompileAndRun(t *testing.T) {
	s := Builtin()
	for file, src := range hello {
		t.Run(file, func(t *testing.T) {
			t.Parallel() // after the tests that set PATH
			l, ok := s.ForFile(file)
			require.True(t, ok)
			for _, tool := range l.Tools() {
				if _, err := exec.LookPath(tool); err != nil {
					if l.Name == "c" || l.Name == "python" {
						t.Fatalf("%s is missing: this machine is expected to have it", tool)
					}
					t.Skipf("%s is not installed here", tool)
				}
			}
			dir := t.TempDir()
			p, err := l.Prepare([]byte(src), dir)
			require.NoError(t, err)
			if l.Name == "java" {
				assert.Equal(t, "Greeter.java", p.Source, "named after the public class")
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, p.Source), []byte(src), 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if len(p.Compile) > 0 {
				cmd := exec.CommandContext(ctx, p.Compile[0], p.Compile[1:]...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s: %s", p.Compile, out)
			}
			run := append(p.Run, "arg1")
			cmd := exec.CommandContext(ctx, run[0], run[1:]...)
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader("input1\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "%s: %s", run, stderr.String())
			assert.Regexp(t, `^hello from \S+ arg1 input1\n4\n$`, string(out))
		})
	}
}

func TestCompileError(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("gcc is missing: this machine is expected to have it")
	}
	c, _ := Builtin().ByName("c")
	dir := t.TempDir()
	p, err := c.Prepare(nil, dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, p.Source), []byte("int main(void) { return x; }\n"), 0o600))
	cmd := exec.Command(p.Compile[0], p.Compile[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "main.c:1")
}
