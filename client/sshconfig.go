package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"

	"resh/auth"
)

// resolve completes o from the ssh configuration (o.ConfigFile, else
// ~/.ssh/config) as ssh does, the command line winning: HOST may be an
// alias whose HostName, Port, User and IdentityFile apply. An IdentityFile
// that is not an ed25519 key resh can use is skipped (note says why, for
// -v). "~/" paths are expanded with home; without home and -F there is no
// configuration. The port falls back to DefaultPort.
func (o *Options) resolve(home string, note func(format string, args ...any)) error {
	o.Identity = expandHome(o.Identity, home)
	path := expandHome(o.ConfigFile, home)
	explicit := path != ""
	if !explicit && home != "" {
		path = filepath.Join(home, ".ssh", "config")
	}
	if path != "" && path != "none" {
		if err := o.applySSHConfig(path, explicit, home, note); err != nil {
			return err
		}
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	return nil
}

// applySSHConfig applies the ssh configuration file path; a missing file is
// an error only when named by -F.
func (o *Options) applySSHConfig(path string, explicit bool, home string, note func(format string, args ...any)) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the ssh configuration: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return fmt.Errorf("ssh configuration %s: %w", path, err)
	}
	alias := o.Host
	get := func(key string) string {
		v, _ := cfg.Get(alias, key)
		return v
	}
	if h := get("HostName"); h != "" {
		h = strings.ReplaceAll(strings.ReplaceAll(h, "%h", alias), "%%", "%")
		note("%s: host %s is %s", path, alias, h)
		o.Host = h
	}
	if p := get("Port"); p != "" && o.Port == 0 {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("ssh configuration %s: bad Port %q for %s", path, p, alias)
		}
		o.Port = n
	}
	if u := get("User"); u != "" && o.User == "" {
		o.User = u
	}
	if o.Identity == "" && !o.Insecure {
		files, _ := cfg.GetAll(alias, "IdentityFile")
		for _, file := range files {
			file = expandHome(strings.ReplaceAll(file, "%d", home), home)
			if _, err := auth.LoadIdentity(file); err != nil {
				note("%s: IdentityFile %s ignored: not an ed25519 key resh can use (%v)", path, file, err)
				continue
			}
			o.Identity = file
			break
		}
	}
	return nil
}

// expandHome replaces a leading "~/" (or a lone "~") with home.
func expandHome(path, home string) string {
	switch {
	case home == "":
		return path
	case path == "~":
		return home
	case strings.HasPrefix(path, "~/"):
		return filepath.Join(home, path[2:])
	}
	return path
}
