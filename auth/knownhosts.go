package auth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"resh/internal/fserr"
)

// UnknownHostError refuses a server that is not in known_hosts when only
// known hosts are allowed.
type UnknownHostError struct {
	Host, Fingerprint, KnownHosts string
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("unknown host %s (key %s): it is not in %s and -known-only is set", e.Host, e.Fingerprint, e.KnownHosts)
}

// HostKeyChangedError refuses a server whose key differs from the one
// known_hosts pins for it.
type HostKeyChangedError struct {
	Host       string
	Offered    string // fingerprint of the key the server presented
	Known      string // fingerprint of the pinned key
	KnownHosts string // file
	Line       int    // line of the pinned key in KnownHosts
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("WARNING: THE HOST KEY OF %s HAS CHANGED. Someone may be intercepting this connection, or its host key was replaced.\n"+
		"  known key:   %s (%s line %d)\n"+
		"  offered key: %s\n"+
		"If you know the change is legitimate, remove line %d of %s and connect again.",
		e.Host, e.Known, e.KnownHosts, e.Line, e.Offered, e.Line, e.KnownHosts)
}

// knownHostsMu serialises this process's checks and appends.
var knownHostsMu sync.Mutex

// hostAddr is a net.Addr for knownhosts, which only splits its String.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// CheckKnownHost checks the server key offered by hostport ("host:port")
// against the known_hosts file at path (created if missing). An unknown
// host is an *UnknownHostError if strict; otherwise its key is appended to
// the file, in OpenSSH format, and one line saying so goes to out. A key that
// differs from the pinned one is a *HostKeyChangedError.
func CheckKnownHost(path, hostport string, key ssh.PublicKey, strict bool, out io.Writer) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open your known_hosts %s: %w", path, fserr.Bare(err))
	}
	_ = f.Close()
	check, err := knownhosts.New(path)
	if err != nil {
		return fmt.Errorf("cannot read your known_hosts %s: %w", path, fserr.Bare(err))
	}
	err = check(hostport, hostAddr(hostport), key)
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("the host key of %s (%s) is revoked in %s line %d", hostport, Fingerprint(key), re.Revoked.Filename, re.Revoked.Line)
	case !errors.As(err, &ke):
		return fmt.Errorf("cannot check the host key of %s against %s: %w", hostport, path, err)
	case len(ke.Want) > 0:
		w := ke.Want[0]
		return &HostKeyChangedError{Host: hostport, Offered: Fingerprint(key), Known: Fingerprint(w.Key), KnownHosts: w.Filename, Line: w.Line}
	case strict:
		return &UnknownHostError{Host: hostport, Fingerprint: Fingerprint(key), KnownHosts: path}
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key) + "\n"
	af, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot record the host key in %s: %w", path, fserr.Bare(err))
	}
	if err := appendLine(af, line); err != nil {
		_ = af.Close()
		return fmt.Errorf("cannot record the host key in %s: %w", path, fserr.Bare(err))
	}
	if err := af.Close(); err != nil {
		return fmt.Errorf("cannot record the host key in %s: %w", path, fserr.Bare(err))
	}
	_, _ = fmt.Fprintf(out, "resh: new host %s, key %s recorded in %s\n", hostport, Fingerprint(key), path)
	return nil
}

// appendLine appends line, first ending the file's last line if it lacks
// its newline (a hand-edited file).
func appendLine(f *os.File, line string) error {
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if r, err := os.Open(f.Name()); err == nil {
			_, rerr := r.ReadAt(last, st.Size()-1)
			_ = r.Close()
			if rerr == nil && last[0] != '\n' {
				line = "\n" + line
			}
		}
	}
	_, err := io.WriteString(f, line)
	return err
}
