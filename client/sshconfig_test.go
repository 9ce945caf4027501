package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/auth"
)

func TestResolveSSHConfig(t *testing.T) {
	home := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(home, ".ssh"), 0o700))
	key := filepath.Join(home, ".ssh", "id_ed25519")
	_, _, err := auth.LoadOrCreateIdentity(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte("not a key\n"), 0o600))
	config := `
Host box
  HostName 127.0.0.2
  Port 2200
  User alice
  IdentityFile ~/.ssh/id_rsa
  IdentityFile ~/.ssh/id_ed25519

Host *.lan
  HostName %h.example
  User lanuser

Host *
  User fallback
`
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(config), 0o600))

	for _, c := range []struct {
		args []string
		want Options
	}{
		{[]string{"box"}, Options{Host: "127.0.0.2", Port: 2200, User: "alice", Identity: key}},
		{[]string{"-p", "99", "bob@box"}, Options{Host: "127.0.0.2", Port: 99, User: "bob", Identity: key}},
		{[]string{"box:77", "-i", "/k"}, Options{Host: "127.0.0.2", Port: 77, User: "alice", Identity: "/k"}},
		{[]string{"pc.lan"}, Options{Host: "pc.lan.example", Port: DefaultPort, User: "lanuser"}},
		{[]string{"other"}, Options{Host: "other", Port: DefaultPort, User: "fallback"}},
		{[]string{"-F", "none", "box"}, Options{Host: "box", Port: DefaultPort}},
		{[]string{"-insecure", "box"}, Options{Host: "127.0.0.2", Port: 2200, User: "alice", Insecure: true}},
	} {
		o, err := Parse(c.args)
		require.NoError(t, err)
		var notes []string
		require.NoError(t, o.resolve(home, func(f string, args ...any) { notes = append(notes, f) }), "%q", c.args)
		c.want.GiveUp = DefaultGiveUp
		c.want.ConfigFile = o.ConfigFile
		assert.Equal(t, c.want, *o, "%q", c.args)
		if c.args[0] == "box" {
			assert.Len(t, notes, 2, "HostName and the unusable id_rsa are noted: %q", notes)
		}
	}

	// -F names another file, which must exist; ~ is expanded.
	other := filepath.Join(home, "other_config")
	require.NoError(t, os.WriteFile(other, []byte("Host x\n  Port 1234\n"), 0o600))
	o, err := Parse([]string{"-F", "~/other_config", "x"})
	require.NoError(t, err)
	require.NoError(t, o.resolve(home, func(string, ...any) {}))
	assert.Equal(t, 1234, o.Port)
	o, err = Parse([]string{"-F", "/nonexistent/config", "x"})
	require.NoError(t, err)
	assert.ErrorContains(t, o.resolve(home, func(string, ...any) {}), "cannot read the ssh configuration")

	// No HOME and no -F: no configuration, the default port.
	o, err = Parse([]string{"box"})
	require.NoError(t, err)
	require.NoError(t, o.resolve("", func(string, ...any) {}))
	assert.Equal(t, Options{Host: "box", Port: DefaultPort, GiveUp: DefaultGiveUp}, *o)
}

func TestResolveBadPort(t *testing.T) {
	home := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host b\n  Port many\n"), 0o600))
	o, err := Parse([]string{"b"})
	require.NoError(t, err)
	assert.ErrorContains(t, o.resolve(home, func(string, ...any) {}), `bad Port "many" for b`)
}
