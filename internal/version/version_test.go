package version

import (
	"regexp"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInfoString(t *testing.T) {
	cases := []struct {
		name string
		info Info
		want string
	}{
		{"unknown", Info{Version: "0.9.0"}, "resh 0.9.0 (commit unknown)"},
		{"commit and date", Info{Version: "0.9.0", Commit: "abc1234", Date: "2026-11-30"}, "resh 0.9.0 (commit abc1234, 2026-11-30)"},
		{"no date", Info{Version: "0.9.0", Commit: "abc1234"}, "resh 0.9.0 (commit abc1234)"},
		{"dirty", Info{Version: "0.9.0", Commit: "abc1234", Date: "2026-11-30", Modified: true}, "resh 0.9.0 (commit abc1234+dirty, 2026-11-30)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, c.info.String("resh"))
		})
	}
}

func TestFromSettings(t *testing.T) {
	settings := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T12:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	got := fromSettings(Info{Version: "1.0"}, settings)
	got.Commit = short(got.Commit)
	assert.Equal(t, Info{Version: "1.0", Commit: "0123456", Date: "2026-11-30", Modified: true}, got)

	// A -X override wins over the build information, which cannot mark it dirty.
	got = fromSettings(Info{Version: "1.0", Commit: "fedcba9", Date: "2026-01-02"}, settings)
	assert.Equal(t, Info{Version: "1.0", Commit: "fedcba9", Date: "2026-01-02"}, got)

	// No VCS stamps (-buildvcs=false): the commit stays unknown.
	got = fromSettings(Info{Version: "1.0"}, nil)
	assert.Equal(t, "p 1.0 (commit unknown)", got.String("p"))
}

func TestString(t *testing.T) {
	// Whether the test binary carries VCS stamps depends on how it was built.
	assert.Regexp(t, regexp.MustCompile(`^lcat `+regexp.QuoteMeta(Version)+` \(commit (unknown|[0-9a-f]{1,7}(\+dirty)?(, \d{4}-\d\d-\d\d)?)\)$`), String("lcat"))
}
