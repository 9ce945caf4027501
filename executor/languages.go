package executor

import "os/exec"

// toolchains are the languages an executor advertises and the programs
// each needs, all of them, found in PATH.
var toolchains = []struct {
	lang  string
	tools []string
}{
	{"c", []string{"gcc"}},
	{"c++", []string{"g++"}},
	{"java", []string{"javac", "java"}},
	{"python", []string{"python3"}},
	{"sh", []string{"sh"}},
}

// Languages returns the languages whose toolchain this machine has, in
// the order c, c++, java, python, sh: gcc for c, g++ for c++, javac and
// java for java, python3 for python, sh for sh, looked up in PATH.
func Languages() []string { return languages(exec.LookPath) }

// languages is Languages with look standing for exec.LookPath.
func languages(look func(string) (string, error)) []string {
	var langs []string
next:
	for _, tc := range toolchains {
		for _, tool := range tc.tools {
			if _, err := look(tool); err != nil {
				continue next
			}
		}
		langs = append(langs, tc.lang)
	}
	return langs
}
