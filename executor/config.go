package executor

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"resh/server"
)

// Config says which master an executor joins, under which name and with
// which limits. Zero fields take their default.
type Config struct {
	// Master is the master's address, host:port.
	Master string
	// Name is the executor's name among the master's executors: 1 to 64
	// characters of [A-Za-z0-9._-]. Default: the host name (up to its
	// first dot if it is longer than 64 characters).
	Name string
	// MaxTasks is how many sessions it runs at once, at most. Default:
	// runtime.NumCPU().
	MaxTasks int
	// MaxCPU is the CPU use, in percent of all the machine's cores
	// (1..100), above which it refuses new sessions. Default 100: no CPU
	// limit.
	MaxCPU float64
	// Home is the executor's RESH_HOME: its host key (auth.HostKeyFile,
	// created if missing) and the known_hosts pinning its master's key.
	// Default: auth.Home's choice ($RESH_HOME, else ~/.resh).
	Home string
	// KnownOnly refuses a master whose key is not in known_hosts, instead
	// of recording it on first use.
	KnownOnly bool
	// Insecure joins without TLS and without keys (reshd -insecure), to a
	// master on a loopback address only.
	Insecure bool
	// Timeout is how long the link may go without a transport before it is
	// given up and its sessions ended: the master's -executor-timeout.
	// Default 30s.
	Timeout time.Duration
	// Server is how the sessions are run (Logger, KillGrace, Guard...); nil
	// takes package server's defaults, with Logger for its logger. The
	// durable jobs the master runs here take its Languages, JobCeiling,
	// UnsafeNoSandbox and ExecutorName (default: Name).
	Server *server.Config
	// Logger receives one line per join, lost link, refusal and problem.
	// Default: discard.
	Logger *slog.Logger
	// CPUWindow is the window over which CPU use is measured. Default 1s.
	CPUWindow time.Duration
}

// DefaultTimeout is Config.Timeout's default, as the master's
// -executor-timeout.
const DefaultTimeout = 30 * time.Second

// maxName is the longest executor name (cluster/spec.md §3).
const maxName = 64

// withDefaults returns c with its defaults filled in, or the reason it
// cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return c, fmt.Errorf("no -name given and no host name to default to: %w", err)
		}
		if len(h) > maxName {
			h, _, _ = strings.Cut(h, ".")
		}
		c.Name = h
	}
	if c.MaxTasks == 0 {
		c.MaxTasks = runtime.NumCPU()
	}
	if c.MaxCPU == 0 {
		c.MaxCPU = 100
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CPUWindow <= 0 {
		c.CPUWindow = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, c.validate()
}

// validate reports a configuration that cannot work, in the terms of
// reshd's flags (its errors are for the user, without the package name).
func (c Config) validate() error {
	if err := ValidName(c.Name); err != nil {
		return err
	}
	switch {
	case c.MaxTasks < 1:
		return fmt.Errorf("-max-tasks %d: it must be at least 1", c.MaxTasks)
	case c.MaxCPU < 1 || c.MaxCPU > 100:
		return fmt.Errorf("-max-cpu %g: it must be a percent of all cores, 1 to 100", c.MaxCPU)
	}
	host, _, err := net.SplitHostPort(c.Master)
	if err != nil || host == "" {
		return fmt.Errorf("bad master address %q: want HOST:PORT", c.Master)
	}
	if c.Insecure && !loopback(host) {
		return fmt.Errorf("-insecure refuses to join %s: only a master on a loopback address (127.0.0.1, ::1, localhost)", c.Master)
	}
	return nil
}

// ValidName reports whether name can name an executor: 1 to 64 characters
// of [A-Za-z0-9._-] (cluster/spec.md §3).
func ValidName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("bad executor name %q: it must have 1 to %d characters", name, maxName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("bad executor name %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
