package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SessionsDir is the directory in RESH_HOME where resh keeps its TLS
// sessions for resumption (NewSessionCache).
const SessionsDir = "tls-sessions"

// maxSessionFiles bounds the files in a SessionCache's directory: past
// it, the oldest are removed.
const maxSessionFiles = 256

// sessionMagic begins a session file; the version is in it.
var sessionMagic = []byte("resh-tls-session-1\n")

// sessionTempPrefix begins the name of a session file being written.
const sessionTempPrefix = ".tmp-"

// SessionCache is a tls.ClientSessionCache kept in files, one per server
// and identity, so that resh's next process resumes the TLS session
// (RFC 8446 §2.2) rather than make a full handshake. A session file is a
// secret like the identity: it lets its holder resume as the identity
// until the server stops accepting the ticket. Files are mode 0600 in a
// 0700 directory, written to a temporary file and renamed; a file that
// cannot be read or parsed is removed and the handshake is a full one.
// Errors are never reported: a session that cannot be kept only costs a
// full handshake next time.
type SessionCache struct {
	dir   string
	scope string // hostport and the identity's fingerprint
}

// NewSessionCache is the session cache in dir (RESH_HOME/SessionsDir)
// for identity's connections to hostport. The file of a session is named
// by a hash of Go's cache key, hostport and the identity's fingerprint:
// another identity, or another server on the same host, never finds it.
func NewSessionCache(dir string, identity ed25519.PrivateKey, hostport string) *SessionCache {
	return &SessionCache{dir: dir, scope: hostport + "\x00" + Fingerprint(PublicKey(identity))}
}

func (c *SessionCache) path(key string) string {
	h := sha256.Sum256([]byte("resh tls session\x00" + c.scope + "\x00" + key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// Get returns the session kept for key, if there is a usable one.
func (c *SessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	p := c.path(key)
	data, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(p)
		}
		return nil, false
	}
	cs, err := decodeSession(data)
	if err != nil {
		_ = os.Remove(p)
		return nil, false
	}
	return cs, true
}

// Put keeps cs for key, replacing the session kept before; a nil cs
// removes it.
func (c *SessionCache) Put(key string, cs *tls.ClientSessionState) {
	p := c.path(key)
	if cs == nil {
		_ = os.Remove(p)
		return
	}
	data, err := encodeSession(cs)
	if err != nil {
		return
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(c.dir, sessionTempPrefix+"*") // mode 0600
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), p) != nil {
		_ = os.Remove(f.Name())
		return
	}
	c.bound()
}

// bound removes the oldest files past maxSessionFiles.
func (c *SessionCache) bound() {
	entries, err := os.ReadDir(c.dir)
	if err != nil || len(entries) <= maxSessionFiles {
		return
	}
	type file struct {
		name string
		mod  time.Time
	}
	files := make([]file, 0, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		files = append(files, file{e.Name(), info.ModTime()})
	}
	slices.SortFunc(files, func(a, b file) int { return a.mod.Compare(b.mod) })
	for _, f := range files[:max(len(files)-maxSessionFiles, 0)] {
		if strings.HasPrefix(f.name, sessionTempPrefix) && time.Since(f.mod) < time.Minute {
			continue // another process is writing it
		}
		_ = os.Remove(filepath.Join(c.dir, f.name))
	}
}

// encodeSession is a session file: sessionMagic, the ticket's length
// (uvarint), the ticket, then the session state (tls.SessionState.Bytes).
func encodeSession(cs *tls.ClientSessionState) ([]byte, error) {
	ticket, st, err := cs.ResumptionState()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("auth: no session state to keep")
	}
	state, err := st.Bytes()
	if err != nil {
		return nil, err
	}
	b := append([]byte(nil), sessionMagic...)
	b = binary.AppendUvarint(b, uint64(len(ticket)))
	b = append(b, ticket...)
	return append(b, state...), nil
}

var errBadSessionFile = errors.New("auth: bad TLS session file")

func decodeSession(data []byte) (*tls.ClientSessionState, error) {
	rest, ok := bytes.CutPrefix(data, sessionMagic)
	if !ok {
		return nil, errBadSessionFile
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k) {
		return nil, errBadSessionFile
	}
	rest = rest[k:]
	ticket, state := rest[:n], rest[n:]
	st, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, err
	}
	return tls.NewResumptionState(slices.Clone(ticket), st)
}
