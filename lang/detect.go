package lang

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// versionTimeout bounds each version command Detect runs.
var versionTimeout = 2 * time.Second

// Detected is a language whose programs this machine has. Its Version is
// the version line; Language.Version the command that printed it.
type Detected struct {
	// Language is the language found.
	Language Language
	// Tools are the paths of the language's tools (Language.Tools) as
	// found in PATH.
	Tools []string
	// Version is the first non-empty line the version command printed
	// (on stdout, else stderr), "" when it has none or it failed.
	Version string
	// VersionErr is why the version command failed, nil if it did not.
	VersionErr error
}

// Detect returns the languages of s whose tools (Language.Tools) are all
// in PATH, sorted by name, each with its version line. The version
// commands run concurrently, each for at most 2 s; a failing one leaves
// the language detected, without a version.
func (s *Set) Detect(ctx context.Context) []Detected {
	return s.DetectIn(ctx, os.Getenv("PATH"))
}

// DetectIn is Detect with the tools looked up in path (a PATH value)
// rather than this process's PATH: the one the programs will run with (a
// sandbox's), so that a language is advertised only where it can run.
func (s *Set) DetectIn(ctx context.Context, path string) []Detected {
	var found []Detected
	for _, l := range s.All() {
		d := Detected{Language: l}
		ok := true
		for _, t := range l.Tools() {
			p, err := LookIn(t, path)
			if err != nil {
				ok = false
				break
			}
			d.Tools = append(d.Tools, p)
		}
		if ok {
			found = append(found, d)
		}
	}
	var wg sync.WaitGroup
	for i := range found {
		d := &found[i]
		if len(d.Language.Version) == 0 {
			continue
		}
		wg.Go(func() { d.Version, d.VersionErr = version(ctx, d.Language.Version) })
	}
	wg.Wait()
	return found
}

// LookIn finds the executable name as exec.LookPath would with PATH set
// to path; a name with a slash is taken as it is.
func LookIn(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if executable(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s: not an executable file", name)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in %s", name, path)
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// version runs argv and returns the first non-empty line of its stdout,
// or else of its stderr.
func version(ctx context.Context, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 100 * time.Millisecond // a child left holding the output
	if err := cmd.Run(); err != nil {
		return "", err
	}
	if v := firstLine(stdout.String()); v != "" {
		return v, nil
	}
	return firstLine(stderr.String()), nil
}

// firstLine is the first line of s holding more than white space,
// trimmed, at most 200 bytes of it.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > 200 {
				line = line[:200]
			}
			return line
		}
	}
	return ""
}

// ToolsIn reports whether every tool l needs (Tools) is an executable
// file in path (a PATH: the sandbox's, sandbox.DefaultPath, where the
// job runs).
func (l Language) ToolsIn(path string) bool {
	for _, t := range l.Tools() {
		if _, err := LookIn(t, path); err != nil {
			return false
		}
	}
	return true
}

// NamesIn names, sorted, the languages of s whose tools are all in path
// (ToolsIn): the languages a reshd can run there.
func (s *Set) NamesIn(path string) []string {
	var have []string
	for _, l := range s.All() {
		if l.ToolsIn(path) {
			have = append(have, l.Name)
		}
	}
	return have
}
