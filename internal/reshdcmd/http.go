package reshdcmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"resh/auth"
	"resh/cluster"
	"resh/internal/version"
	"resh/server"
	"resh/web"
)

// DefaultHTTPPort is the dashboard's conventional port (-http with no
// port); reshd's own is DefaultPort.
const DefaultHTTPPort = "4280"

// httpShutdown bounds how long the dashboard's requests may take to end
// at shutdown (event streams are cut at once).
const httpShutdown = 3 * time.Second

// httpAddress completes -http's ADDR: a port alone (":4280" or "4280")
// means every interface, a host alone takes DefaultHTTPPort.
func httpAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("-http needs an address, HOST:PORT (conventionally 127.0.0.1:" + DefaultHTTPPort + ")")
	}
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a, nil
	}
	if strings.Trim(a, "0123456789") == "" {
		return net.JoinHostPort("", a), nil
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), DefaultHTTPPort), nil
}

// dashboard is the web dashboard being served.
type dashboard struct {
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc // cuts the event streams
	done   chan struct{}
	once   sync.Once
}

// dashboardParts is what the dashboard shows and drives.
type dashboardParts struct {
	jobs    web.Jobs
	master  *cluster.Master
	locals  web.Locals // nil: none can be started
	stop    func()
	listen  string // reshd's address
	started time.Time
	metrics http.Handler
}

// startDashboard listens on o.HTTP and serves the dashboard: plain HTTP
// without login on loopback, else HTTPS with the token of RESH_HOME. The
// URL to open goes to each of out.
func startDashboard(o Options, p dashboardParts, log *slog.Logger, out []io.Writer) (*dashboard, error) {
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.HTTP)
	if err != nil {
		return nil, fmt.Errorf("the dashboard: %w", listenError(o.HTTP, err))
	}
	addr := ln.Addr().String()
	local := loopback(o.HTTP)
	host, _ := os.Hostname()
	owner := server.InsecureOwner
	if !o.Insecure {
		hk, err := auth.LoadIdentity(filepath.Join(home, auth.HostKeyFile))
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		owner = auth.Fingerprint(auth.PublicKey(hk))
	}
	store := "sqlite"
	if strings.HasPrefix(o.Store, "postgres://") || strings.HasPrefix(o.Store, "postgresql://") {
		store = "postgres"
	}
	// Where to browse: a wildcard address is reached by the host's name.
	shown := addr
	if h, port, err := net.SplitHostPort(addr); err == nil && net.ParseIP(h).IsUnspecified() && host != "" {
		shown = net.JoinHostPort(host, port)
	}
	cfg := web.Config{
		Jobs:            p.jobs,
		Executors:       p.master.Executors,
		Languages:       func() []string { l, _ := p.master.Languages(); return l },
		WaitingSessions: p.master.Waiting,
		Owner:           owner,
		Stop:            p.stop,
		Metrics:         p.metrics,
		Logger:          log,
		Info: func() web.Info {
			return web.Info{Name: host, Version: version.String("reshd"), Started: p.started, Listen: p.listen, HTTP: shown, HTTPS: !local, Store: store, Secure: !o.Insecure}
		},
	}
	if p.locals != nil {
		cfg.Locals = p.locals
	}
	url := "http://" + addr + "/"
	var tcfg *tls.Config
	if !local {
		tok, err := auth.HTTPToken(home)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		cfg.Token = tok
		names := certNames(ln.Addr().(*net.TCPAddr), host)
		cert, fp, err := auth.HTTPCertificate(home, names)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		tcfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		url = "https://" + shown + "/?token=" + tok
		log.Info("reshd: dashboard certificate", "sha256", fp, "names", names)
	}
	h, err := web.New(cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tcfg,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	d := &dashboard{srv: srv, ln: ln, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		var err error
		if tcfg != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("reshd: the dashboard stopped serving", "err", err)
		}
	}()
	for _, w := range out {
		_, _ = fmt.Fprintf(w, "reshd: dashboard on %s\n", url)
	}
	return d, nil
}

// close stops serving the dashboard: event streams end at once, other
// requests get httpShutdown to finish.
func (d *dashboard) close() {
	if d == nil {
		return
	}
	d.once.Do(func() {
		d.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), httpShutdown)
		defer cancel()
		if err := d.srv.Shutdown(ctx); err != nil {
			_ = d.srv.Close()
		}
		<-d.done
	})
}

// certNames are the names the dashboard's certificate covers: the listen
// address (every address of the machine for a wildcard), the host name
// and localhost.
func certNames(a *net.TCPAddr, host string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if host != "" {
		names = append(names, host)
	}
	if !a.IP.IsUnspecified() {
		return appendNew(names, a.IP.String())
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			names = appendNew(names, n.IP.String())
		}
	}
	return names
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
