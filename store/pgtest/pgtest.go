// Package pgtest starts throwaway PostgreSQL servers for tests, from the
// PostgreSQL installed on the machine (Debian's postgresql package: .ci/run
// installs it).
//
// Start gives a test the URL of a fresh empty database. By default each
// test gets a server of its own, stopped and removed when the test ends;
// a package whose TestMain runs its tests through Shared starts one
// server for all of them (a database each), stopped when they are done:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Shared(m).Run()) }
//
// A server runs from a new temporary directory, with its data, its Unix
// socket and its log, listening on a free 127.0.0.1 port; it trusts local
// connections (user postgres, no password) and does not sync to disk
// unless asked (settings "fsync=on", "synchronous_commit=on"). Run as
// root (as in CI), the server runs as the user postgres, or nobody, since
// PostgreSQL refuses root.
//
// Without PostgreSQL, Start fails the test, saying to install it, unless
// RESH_TEST_NO_POSTGRES=1 is set: then it skips it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvSkip is the environment variable that, set to 1, makes Start skip
// the test when PostgreSQL is not installed, rather than fail it.
const EnvSkip = "RESH_TEST_NO_POSTGRES"

// ErrNotInstalled is the error of a machine without PostgreSQL's
// programs.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL is not installed (no initdb and pg_ctl in PATH or /usr/lib/postgresql/*/bin): " +
	"install it (apt-get install postgresql; .ci/run does) or set " + EnvSkip + "=1 to skip the PostgreSQL tests")

// startTimeout bounds starting a server (initdb, then pg_ctl waiting
// until it accepts connections).
const startTimeout = 60 * time.Second

// Runner is what runs a package's tests: *testing.M.
type Runner interface{ Run() int }

// shared holds the servers of a package running through Shared, by
// settings.
var shared struct {
	mu      sync.Mutex
	on      bool
	servers map[string]*sharedServer
}

// sharedServer is a server started once for every test asking for its
// settings, or the error starting it gave.
type sharedServer struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns a Runner that runs m's tests with one server per
// settings for all of them, and stops the servers afterwards.
func Shared(m Runner) Runner { return sharedRunner{m} }

type sharedRunner struct{ m Runner }

func (r sharedRunner) Run() int {
	shared.mu.Lock()
	shared.on = true
	shared.servers = make(map[string]*sharedServer)
	shared.mu.Unlock()
	code := r.m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, ss := range shared.servers {
		if ss.s != nil {
			if err := ss.s.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = max(code, 1)
			}
		}
	}
	shared.on = false
	return code
}

// Start returns the URL of a new empty database on a throwaway server
// with these settings (name=value, as in postgresql.conf).
func Start(t testing.TB, settings ...string) string {
	t.Helper()
	s, err := server(t, settings)
	if errors.Is(err, ErrNotInstalled) && os.Getenv(EnvSkip) == "1" {
		t.Skipf("PostgreSQL is not installed and %s=1", EnvSkip)
		return ""
	}
	if err != nil {
		t.Fatal(err)
		return ""
	}
	url, err := s.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
		return ""
	}
	return url
}

// server returns the shared server for settings, or starts one for t.
func server(t testing.TB, settings []string) (*Server, error) {
	shared.mu.Lock()
	if !shared.on {
		shared.mu.Unlock()
		s, err := StartServer(settings...)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Error(err)
			}
		})
		return s, nil
	}
	key := strings.Join(settings, "\x00")
	ss := shared.servers[key]
	if ss == nil {
		ss = &sharedServer{}
		shared.servers[key] = ss
	}
	shared.mu.Unlock()
	ss.once.Do(func() { ss.s, ss.err = StartServer(settings...) })
	return ss.s, ss.err
}

// Server is one running throwaway PostgreSQL server.
type Server struct {
	dir  string // holds data/, the socket and the log
	bin  string // where pg_ctl is
	port int
	cred *syscall.Credential // whom to run as; nil: ourselves
	dbs  atomic.Int64
	stop sync.Once
}

// Port is the server's port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL is the connection string of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDB creates a new empty database and returns its URL.
func (s *Server) CreateDB(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background()) //nolint:errcheck // nothing to keep
	name := "test" + strconv.FormatInt(s.dbs.Add(1), 10)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return s.URL(name), nil
}

// StartServer starts a server with these settings in a new temporary
// directory, and returns once it accepts connections.
func StartServer(settings ...string) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, bin: bin}
	if err := s.start(settings); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// start runs initdb, then pg_ctl start on a free port (trying another
// when the port was taken meanwhile).
func (s *Server) start(settings []string) error {
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err != nil {
			return err
		}
		s.cred = cred
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	data := filepath.Join(s.dir, "data")
	if out, err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("pgtest: initdb: %v: %s", err, out)
	}
	opts := []string{"-c listen_addresses=127.0.0.1", "-c unix_socket_directories=" + s.dir,
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200"}
	for _, kv := range settings {
		opts = append(opts, "-c "+kv)
	}
	var err error
	for try := 0; try < 3; try++ {
		if s.port, err = freePort(); err != nil {
			return err
		}
		logFile := filepath.Join(s.dir, "log")
		var out []byte
		out, err = s.run(ctx, "pg_ctl", "start", "-D", data, "-w", "-t", "50", "-l", logFile,
			"-o", strings.Join(append(opts, "-p "+strconv.Itoa(s.port)), " "))
		if err == nil {
			return s.ping(ctx)
		}
		log, _ := os.ReadFile(logFile)
		err = fmt.Errorf("pgtest: pg_ctl start: %v: %s\n%s", err, out, log)
		if !strings.Contains(string(log), "already in use") {
			break
		}
	}
	return err
}

// ping waits until the server accepts a connection and a query, within
// ctx.
func (s *Server) ping(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.Background()) //nolint:errcheck // a probe
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pgtest: the server does not answer: %w", err)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// Stop stops the server at once (pg_ctl stop -m immediate) and removes
// its directory.
func (s *Server) Stop() error {
	var err error
	s.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, e := s.run(ctx, "pg_ctl", "stop", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w")
		if e != nil {
			err = fmt.Errorf("pgtest: pg_ctl stop: %v: %s", e, out)
		}
		if e := os.RemoveAll(s.dir); e != nil && err == nil {
			err = fmt.Errorf("pgtest: %w", e)
		}
	})
	return err
}

// run runs one of PostgreSQL's programs as the server's user.
func (s *Server) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// unprivileged is the user to run PostgreSQL as when we are root:
// postgres, or else nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
		}
	}
	return nil, errors.New("pgtest: running as root and there is no user postgres or nobody to run PostgreSQL as")
}

// libGlob is where Debian installs each PostgreSQL version's programs.
var libGlob = "/usr/lib/postgresql/*/bin"

// findBin returns the directory holding initdb and pg_ctl: the one of
// initdb in PATH (links followed), else the newest
// /usr/lib/postgresql/VERSION/bin.
func findBin() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob(libGlob)
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// version is the major version in /usr/lib/postgresql/VERSION/bin.
func version(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

// executable reports whether path is an executable file.
func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freePort returns a 127.0.0.1 port free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
