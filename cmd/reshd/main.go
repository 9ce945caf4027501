// Command reshd serves resh sessions: it runs each client's command as the
// user running reshd, and relays lcat/ltee transfers to the client.
//
//	reshd [-listen ADDR] [-detach-timeout D]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"resh/server"
)

const usage = "usage: reshd [-listen ADDR] [-detach-timeout DURATION]"

// shutdownTimeout bounds the wait for sessions after SIGTERM: commands get
// SIGKILL 3s after SIGHUP, and the rest lets their Exit reach clients that
// are still connected (a detached client would hold the drain for long).
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	listen        string
	detachTimeout time.Duration
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("reshd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:4200", "address to listen on")
	fs.DurationVar(&o.detachTimeout, "detach-timeout", 10*time.Minute, "how long a disconnected session waits for its client")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.detachTimeout <= 0 {
		return o, fmt.Errorf("-detach-timeout must be positive, not %v", o.detachTimeout)
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
	srv, err := server.Listen(o.listen, &server.Config{DetachTimeout: o.detachTimeout, Logger: log})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "reshd: %v\n", err)
		return 1
	}
	_, _ = fmt.Fprintf(stderr, "reshd: listening on %s\n", srv.Addr())
	who := "this user"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	log.Warn("reshd: no authentication yet: anyone who can reach this address can run commands as "+who, "addr", srv.Addr().String())

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
