// Command reshd serves resh sessions: it runs each client's command as the
// user running reshd, and relays lcat/ltee transfers to the client.
//
//	reshd [-listen ADDR] [-detach-timeout D] [-insecure]
//
// Sessions run over TLS 1.3: reshd presents its host key RESH_HOME/host_ed25519
// (created on first start) and admits the clients whose keys are listed in
// RESH_HOME/authorized_keys (created, if missing, with the key of the
// identity RESH_HOME/id_ed25519). RESH_HOME defaults to ~/.resh. -insecure
// serves plain TCP without keys, on a loopback address only.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"syscall"
	"time"

	"resh/auth"
	"resh/server"
)

const usage = "usage: reshd [-listen ADDR] [-detach-timeout DURATION] [-insecure]"

// shutdownTimeout bounds the wait for sessions after SIGTERM: commands get
// SIGKILL 3s after SIGHUP, and the rest lets their Exit reach clients that
// are still connected (a detached client would hold the drain for long).
const shutdownTimeout = 5 * time.Second

// guardianArg, as reshd's only argument, runs it as the guardian of
// another reshd (server.ServeGuard), which starts it: not for users.
const guardianArg = "-internal-guardian"

// killGrace is how long a hung-up command may live before SIGKILL, as
// server.Config.KillGrace's default.
const killGrace = 3 * time.Second

func main() {
	if len(os.Args) == 2 && os.Args[1] == guardianArg {
		// It outlives reshd, whatever ends it.
		signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		os.Exit(server.ServeGuard(os.Stdin, os.Stderr, killGrace))
	}
	if err := unblockSignals(); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "reshd: %v\n", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	listen        string
	detachTimeout time.Duration
	insecure      bool
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("reshd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:4200", "address to listen on")
	fs.DurationVar(&o.detachTimeout, "detach-timeout", 10*time.Minute, "how long a disconnected session waits for its client")
	fs.BoolVar(&o.insecure, "insecure", false, "plain TCP, no TLS and no keys (loopback addresses only)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.detachTimeout <= 0 {
		return o, fmt.Errorf("-detach-timeout must be positive, not %v", o.detachTimeout)
	}
	if o.insecure && !loopback(o.listen) {
		return o, fmt.Errorf("-insecure refuses to listen on %q: only a loopback address (127.0.0.1, ::1, localhost)", o.listen)
	}
	return o, nil
}

// run serves until ctx is done, then shuts down; it returns the exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprintln(stderr, usage)
			return 2
		}
		_, _ = fmt.Fprintf(stderr, "reshd: %v\n%s\n", err, usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	server.RaiseFileLimit(log)
	cfg := &server.Config{DetachTimeout: o.detachTimeout, Logger: log, KillGrace: killGrace}
	// The guardian hangs up the sessions if reshd is killed (-9).
	guard, err := server.StartGuard(log, selfExe(), guardianArg)
	if err != nil {
		log.Warn("reshd: no guardian: sessions will outlive reshd if it is killed", "err", err)
	}
	defer func() { _ = guard.Close() }()
	cfg.Guard = guard
	if !o.insecure {
		tcfg, err := secure(log)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "reshd: %v\n", err)
			return 1
		}
		cfg.TLS = tcfg
	}
	srv, err := server.Listen(o.listen, cfg)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "reshd: %v\n", err)
		return 1
	}
	_, _ = fmt.Fprintf(stderr, "reshd: listening on %s\n", srv.Addr())
	if o.insecure {
		who := "this user"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		log.Warn("reshd: -insecure: no encryption and no authentication: anyone who can reach this address can run commands as "+who, "addr", srv.Addr().String())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		log.Error("reshd: stopped serving", "err", err)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return 1
	case <-ctx.Done():
	}
	log.Info("reshd: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("reshd: sessions cut at shutdown", "err", err)
	}
	<-served
	return 0
}

// selfExe is this program's executable, as /proc/self/exe where there is
// one (it holds even once the file was replaced).
func selfExe() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

// loopback reports whether the listen address addr is on a loopback
// interface only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secure prepares reshd's keys in RESH_HOME, creating the host key and, if
// missing, an authorized_keys listing the local identity, and returns the
// TLS configuration.
func secure(log *slog.Logger) (*tls.Config, error) {
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	hostPath := filepath.Join(home, auth.HostKeyFile)
	hostKey, created, err := auth.LoadOrCreateIdentity(hostPath)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("reshd: created host key", "path", hostPath)
	}
	log.Info("reshd: host key", "fingerprint", auth.Fingerprint(auth.PublicKey(hostKey)), "path", hostPath)
	akPath := filepath.Join(home, auth.AuthorizedKeysFile)
	if _, err := os.Stat(akPath); errors.Is(err, fs.ErrNotExist) {
		idPath := filepath.Join(home, auth.IdentityFile)
		id, created, err := auth.LoadOrCreateIdentity(idPath)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("reshd: created identity", "path", idPath)
		}
		pub := auth.PublicKey(id)
		if made, err := auth.EnsureAuthorizedKeys(akPath, pub, "identity "+idPath); err != nil {
			return nil, err
		} else if made {
			log.Info("reshd: created authorized_keys with the key of this user's identity: only it can connect", "path", akPath, "fingerprint", auth.Fingerprint(pub))
		}
	}
	keys, bad, err := auth.ReadAuthorizedKeys(akPath)
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		log.Warn("reshd: bad line in authorized_keys, skipped", "err", b)
	}
	log.Info("reshd: clients admitted by authorized_keys (re-read on each connection)", "path", akPath, "keys", len(keys))
	return auth.ServerTLS(hostKey, akPath, log, auth.NewLimiter())
}
