// Package version says which build of resh is running: the release
// version and the commit it was built from, for every binary's --version.
//
// The commit comes from the build information Go records (vcs.revision,
// vcs.time, vcs.modified) when it builds inside a git checkout. A build
// without it (GOFLAGS=-buildvcs=false, as in CI, or from a tarball) can set
// it with the linker:
//
//	go build -ldflags "-X resh/internal/version.Commit=$(git rev-parse HEAD) -X resh/internal/version.Date=2026-11-30" ./cmd/...
//
// and otherwise prints "commit unknown".
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version is the release version of the suite; the linker may override it
// (-X resh/internal/version.Version=...).
var Version = "0.9.0"

// Commit is the git commit the binaries were built from, set with
// -ldflags -X; when empty it is read from the build information.
var Commit = ""

// Date is the commit's date (YYYY-MM-DD), set with -ldflags -X; when empty
// it is read from the build information.
var Date = ""

// Info is what --version reports.
type Info struct {
	Version  string // release version, e.g. 0.9.0
	Commit   string // commit hash, abbreviated to 7 digits; empty if unknown
	Date     string // commit date as YYYY-MM-DD; empty if unknown
	Modified bool   // built from a tree with uncommitted changes
}

// Get returns this binary's version information: the -X overrides where
// set, else the VCS stamps of the build information.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info = fromSettings(info, bi.Settings)
	}
	info.Commit = short(info.Commit)
	return info
}

// fromSettings fills what info lacks from the build settings.
func fromSettings(info Info, settings []debug.BuildSetting) Info {
	fromVCS := info.Commit == ""
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			if fromVCS {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" && len(s.Value) >= len("2006-01-02") {
				info.Date = s.Value[:len("2006-01-02")]
			}
		case "vcs.modified":
			if fromVCS {
				info.Modified = s.Value == "true"
			}
		}
	}
	return info
}

// short abbreviates a commit hash to 7 digits, as git does.
func short(commit string) string {
	commit = strings.TrimSpace(commit)
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// String formats the information as prog's --version line:
//
//	resh 0.9.0 (commit abc1234, 2026-11-30)
//	resh 0.9.0 (commit abc1234+dirty, 2026-11-30)
//	resh 0.9.0 (commit unknown)
func (i Info) String(prog string) string {
	if i.Commit == "" {
		return fmt.Sprintf("%s %s (commit unknown)", prog, i.Version)
	}
	c := i.Commit
	if i.Modified {
		c += "+dirty"
	}
	if i.Date == "" {
		return fmt.Sprintf("%s %s (commit %s)", prog, i.Version, c)
	}
	return fmt.Sprintf("%s %s (commit %s, %s)", prog, i.Version, c, i.Date)
}

// String is the --version line of the program prog for this binary, e.g.
// "resh 0.9.0 (commit abc1234, 2026-11-30)" or "resh 0.9.0 (commit unknown)".
func String(prog string) string {
	return Get().String(prog)
}

// Short is this binary's version in one word, for tables: the release
// version, with the commit after a '+' when known ("0.9.0+1ca1659"), and
// "-dirty" after it if the tree had uncommitted changes.
func Short() string {
	info := Get()
	s := info.Version
	if info.Commit != "" {
		s += "+" + info.Commit
		if info.Modified {
			s += "-dirty"
		}
	}
	return s
}
