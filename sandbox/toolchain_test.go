package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestToolchains compiles and runs hello in each language whose toolchain
// the machine has, in the sandbox with the default limits.
func TestToolchains(t *testing.T) {
	for _, tc := range []struct {
		tool, file, src string
		steps           [][]string
	}{
		{"gcc", "hello.c", `#include <stdio.h>
int main(void) { puts("hello"); return 0; }`, [][]string{{"gcc", "-std=c17", "-O2", "-o", "hello", "hello.c", "-lm"}, {"./hello"}}},
		{"g++", "hello.cpp", `#include <iostream>
int main() { std::cout << "hello" << std::endl; }`, [][]string{{"g++", "-std=c++17", "-O2", "-o", "hello", "hello.cpp"}, {"./hello"}}},
		{"python3", "hello.py", `print("hello")`, [][]string{{"python3", "hello.py"}}},
		{"javac", "Main.java", `public class Main { public static void main(String[] a) { System.out.println("hello"); } }`,
			[][]string{{"javac", "Main.java"}, {"java", "-Xmx256m", "-Xss8m", "-XX:+UseSerialGC", "Main"}}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			if _, err := exec.LookPath("/usr/bin/" + tc.tool); err != nil {
				t.Skipf("no /usr/bin/%s here", tc.tool)
			}
			dir := workDir(t)
			require.NoError(t, os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.src), 0o644))
			for i, argv := range tc.steps {
				j := newJob(t, argv...)
				j.spec.Dir = dir
				if tc.tool == "javac" && !cgroupsUsable() {
					// RLIMIT_AS: the JVM reserves far more address space
					// than it uses (see Limits.Memory).
					j.spec.Limits.Memory = 4 << 30
				}
				res := j.run()
				require.Equal(t, Exited, res.Outcome, "%v: %s %s", argv, res.Detail, j.err.String())
				require.Equal(t, 0, res.Code, "%v: %s", argv, j.err.String())
				if i == len(tc.steps)-1 {
					assert.Equal(t, "hello\n", j.out.String())
				}
			}
		})
	}
}
