// Package auth is resh's security: ed25519 keys in OpenSSH formats (the
// client's identity, reshd's host key, authorized_keys, known_hosts), and the
// TLS 1.3 configurations that carry them, with each side presenting a
// self-signed certificate that is only a carrier for its ed25519 key.
//
// reshd admits a client whose key is listed in its authorized_keys (read
// afresh on each connection); resh pins the server's host key in its
// known_hosts at first contact and refuses a server whose key changed.
package auth

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"resh/internal/fserr"
)

// File names inside RESH_HOME.
const (
	// IdentityFile is the client's private key; IdentityFile+".pub" is its
	// public key in authorized_keys format.
	IdentityFile = "id_ed25519"
	// HostKeyFile is reshd's private host key.
	HostKeyFile = "host_ed25519"
	// AuthorizedKeysFile lists the client keys reshd admits.
	AuthorizedKeysFile = "authorized_keys"
	// ExecutorsFile lists the executor keys a master admits (authorized_keys
	// format).
	ExecutorsFile = "executors"
	// KnownHostsFile pins the host keys of the servers resh has reached.
	KnownHostsFile = "known_hosts"
)

// Home returns resh's directory: $RESH_HOME if set, else ~/.resh. It
// creates it (mode 0700) if missing.
func Home() (string, error) { return HomeDir(os.Getenv("RESH_HOME")) }

// HomeDir is Home with reshHome standing for $RESH_HOME.
func HomeDir(reshHome string) (string, error) {
	dir := reshHome
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory to keep resh's keys in (%w): set RESH_HOME to a directory", err)
		}
		dir = filepath.Join(h, ".resh")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot create resh's key directory %s: %w (set RESH_HOME to another directory)", dir, fserr.Bare(err))
	}
	return dir, nil
}

// LoadOrCreateIdentity reads the OpenSSH ed25519 private key at path, or, if
// there is no file, creates one (mode 0600) with its public key beside it in
// path+".pub" (0644, commented user@host). created reports a new key. An
// unencrypted OpenSSH or PKCS#8 ed25519 key made by ssh-keygen is accepted;
// a passphrase-protected or non-ed25519 key is refused with a clear error.
// Two processes creating the same key at once end up with the same key.
func LoadOrCreateIdentity(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = readPrivateKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("cannot generate a key: %w", err)
	}
	comment := userAtHost()
	block, err := ssh.MarshalPrivateKey(key, comment)
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode the new key: %w", err)
	}
	won, err := createExclusive(path, pem.EncodeToMemory(block), 0o600)
	if err != nil {
		return nil, false, err
	}
	if !won { // another process made it first: use theirs
		key, err = readPrivateKey(path)
		return key, false, err
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode the new key: %w", err)
	}
	if _, err := createExclusive(path+".pub", AuthorizedLine(pub, comment), 0o644); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// LoadIdentity reads the OpenSSH ed25519 private key at path (resh -i):
// see LoadOrCreateIdentity for what is accepted.
func LoadIdentity(path string) (ed25519.PrivateKey, error) { return readPrivateKey(path) }

// readPrivateKey reads and checks an ed25519 private key.
func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read your key %s: %w", path, fserr.Bare(err))
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("your key %s is protected by a passphrase, which resh does not support: use a key without one (ssh-keygen -t ed25519 -N '' -f FILE)", path)
		}
		return nil, fmt.Errorf("%s is not an OpenSSH private key: give resh an ed25519 key made by ssh-keygen -t ed25519", path)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	}
	return nil, fmt.Errorf("your key %s is a %s key; resh needs an ed25519 key (ssh-keygen -t ed25519)", path, keyKind(raw))
}

func keyKind(k any) string {
	s := fmt.Sprintf("%T", k)
	switch {
	case strings.Contains(s, "rsa"):
		return "RSA"
	case strings.Contains(s, "ecdsa"):
		return "ECDSA"
	case strings.Contains(s, "dsa"):
		return "DSA"
	}
	return s
}

// createExclusive writes data to path only if path does not exist, so that
// a reader never sees a partial file: it writes a temporary file and links
// it into place. won is false if path already existed.
func createExclusive(path string, data []byte, mode os.FileMode) (won bool, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("cannot create %s: %w", path, fserr.Bare(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("cannot write %s: %w", path, fserr.Bare(err))
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("cannot create %s: %w", path, fserr.Bare(err))
	}
	return true, nil
}

func userAtHost() string {
	name := "resh"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return name + "@" + host
}

// AuthorizedLine is key as one authorized_keys line ending in a newline,
// with comment after it if not empty.
func AuthorizedLine(key ssh.PublicKey, comment string) []byte {
	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(key), []byte("\n"))
	if comment != "" {
		line = append(line, ' ')
		line = append(line, comment...)
	}
	return append(line, '\n')
}

// PublicKey returns key's public half as an ssh.PublicKey.
func PublicKey(key ed25519.PrivateKey) ssh.PublicKey {
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil { // cannot happen for an ed25519 key
		panic("auth: " + err.Error())
	}
	return pub
}

// Fingerprint is key's OpenSSH SHA256 fingerprint, "SHA256:...".
func Fingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }

// ReadAuthorizedKeys reads an authorized_keys file: one OpenSSH public key
// per line, blank lines and # comments skipped. A line that does not parse
// is skipped and reported in bad with its line number; err is set only when
// the file cannot be read.
func ReadAuthorizedKeys(path string) (keys []ssh.PublicKey, bad []error, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w", path, fserr.Bare(err))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s line %d is not an OpenSSH public key", path, n))
			continue
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return keys, bad, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return keys, bad, nil
}

// EnsureAuthorizedKeys creates the authorized_keys file at path, listing
// key, if it does not exist. created reports that it did.
func EnsureAuthorizedKeys(path string, key ssh.PublicKey, comment string) (created bool, err error) {
	header := "# Client keys reshd admits, one OpenSSH public key per line (the contents of a .pub file).\n"
	return createExclusive(path, append([]byte(header), AuthorizedLine(key, comment)...), 0o600)
}

// AddAuthorizedKey appends key to the authorized_keys-format file at path
// (created, mode 0600, if missing) unless a line already lists it. added
// reports that it did.
func AddAuthorizedKey(path string, key ssh.PublicKey, comment string) (added bool, err error) {
	keys, _, err := ReadAuthorizedKeys(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for _, k := range keys {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return false, nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("cannot add a key to %s: %w", path, fserr.Bare(err))
	}
	_, err = f.Write(AuthorizedLine(key, comment))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("cannot add a key to %s: %w", path, fserr.Bare(err))
	}
	return true, nil
}
