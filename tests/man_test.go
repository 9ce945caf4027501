package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// programs are the binaries with a man page in man/.
var programs = []string{"resh", "reshd", "lcat", "ltee", "mitm"}

// runBinary runs bin/name with args within 30 seconds and returns its
// exit status, stdout and stderr.
func runBinary(t *testing.T, name string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), "RESH_SOCKET=", "HOME="+t.TempDir())
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%s %q did not end", name, args)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

// Every program: -h and --help print the usage with the options described
// on stdout and exit 0; --version prints the version and the commit (which
// a build without VCS stamps cannot know); a bad option exits 2 with one
// line saying so, then the usage.
func TestEveryBinaryHelpVersionUsage(t *testing.T) {
	for _, p := range programs {
		t.Run(p, func(t *testing.T) {
			for _, h := range []string{"-h", "--help"} {
				code, out, errb := runBinary(t, p, h)
				assert.Equal(t, 0, code, "%s %s", p, h)
				assert.Empty(t, errb, "%s %s", p, h)
				assert.True(t, strings.HasPrefix(out, "usage: "+p), "%s %s: %q", p, h, out)
				assert.NotEmpty(t, helpFlags(out), "%s %s describes no option", p, h)
			}
			code, out, errb := runBinary(t, p, "--version")
			assert.Equal(t, 0, code)
			assert.Empty(t, errb)
			assert.Regexp(t, `^`+p+` \d+\.\d+\.\d+\S* \(commit ([0-9a-f]{7}(\+dirty)?(, \d{4}-\d\d-\d\d)?|unknown)\)\n$`, out)

			code, out, errb = runBinary(t, p, "-Z")
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			lines := strings.Split(strings.TrimSuffix(errb, "\n"), "\n")
			require.GreaterOrEqual(t, len(lines), 2, "%q", errb)
			assert.True(t, strings.HasPrefix(lines[0], p+": "), "%q", lines[0])
			assert.Contains(t, lines[0], "Z")
			assert.True(t, strings.HasPrefix(lines[1], "usage: "+p), "%q", lines[1])
		})
	}
}

// Each man page in man/ documents in OPTIONS every option its program's -h
// describes, and no option the program does not have.
func TestManPagesMatchFlags(t *testing.T) {
	for _, p := range programs {
		t.Run(p, func(t *testing.T) {
			page, err := os.ReadFile(filepath.Join("..", "man", p+".1"))
			require.NoError(t, err)
			documented := manOptions(t, string(page))
			_, out, _ := runBinary(t, p, "-h")
			described := helpFlags(out)
			require.NotEmpty(t, described)
			assert.Empty(t, missing(described, documented), "options of %s -h missing from man/%s.1's OPTIONS", p, p)
			assert.Empty(t, missing(documented, described), "options in man/%s.1 that %s -h does not describe", p, p)
			for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"} {
				assert.Contains(t, string(page), "\n.SH "+sec+"\n", "man/%s.1 has a %s section", p, sec)
			}
		})
	}
}

// The man pages render without warnings where man is installed.
func TestManPagesRender(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed")
	}
	for _, p := range programs {
		cmd := exec.Command("man", "--warnings", "-l", filepath.Join("..", "man", p+".1"))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil && strings.Contains(errb.String(), "can't execute") {
			t.Skip("man cannot format pages here: " + errb.String())
		}
		assert.Empty(t, errb.String(), "man %s.1 warns", p)
		assert.Contains(t, out.String(), strings.ToUpper(p)+"(1)")
	}
}

// helpFlags returns the options a -h text describes, without their
// dashes: those at the start of a line indented by two spaces, in the
// column before the description ("  -4, -6   ...", "  -listen string",
// "  -a\tappend ...", "  -h, --help ...").
func helpFlags(help string) []string {
	var flags []string
	for _, line := range strings.Split(help, "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		column := line[2:]
		if i := regexp.MustCompile(`\t| {2,}`).FindStringIndex(column); i != nil {
			column = column[:i[0]]
		}
		flags = append(flags, optionNames(column)...)
	}
	return uniq(flags)
}

// manOptions returns the options a man page documents in OPTIONS: the
// tags of its .TP paragraphs.
func manOptions(t *testing.T, page string) []string {
	t.Helper()
	i := strings.Index(page, "\n.SH OPTIONS\n")
	require.GreaterOrEqual(t, i, 0, "no OPTIONS section")
	section := page[i+len("\n.SH OPTIONS\n"):]
	if j := strings.Index(section, "\n.SH "); j >= 0 {
		section = section[:j]
	}
	var opts []string
	lines := strings.Split(section, "\n")
	for k, line := range lines {
		if line != ".TP" || k+1 == len(lines) {
			continue
		}
		tag := lines[k+1]
		tag = regexp.MustCompile(`^\.[A-Z]+ ?`).ReplaceAllString(tag, "") // .B, .BR, .BI
		tag = strings.NewReplacer(`\-`, "-", `"`, " ", `\fB`, "", `\fR`, "", `\fI`, "").Replace(tag)
		opts = append(opts, optionNames(tag)...)
	}
	return uniq(opts)
}

// optionNames returns the option names in s, without dashes: words that
// start with - or -- (so not "KEY=VALUE" nor "[-D, +D]").
func optionNames(s string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?:^|[\s,])--?([A-Za-z0-9][A-Za-z0-9-]*)`).FindAllStringSubmatch(s, -1) {
		names = append(names, m[1])
	}
	return names
}

func uniq(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// missing returns what of want is not in have.
func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}
