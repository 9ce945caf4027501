package web

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody bounds a request's body (spec.md: 24 MiB, 413 above).
const maxBody = 24 << 20

// tokenCookie is the cookie that carries the token once given as ?token=.
const tokenCookie = "resh_token"

// defaultPing is how often an event stream gets a ": ping" comment.
const defaultPing = 15 * time.Second

// server serves the API of one Config.
type server struct {
	cfg  Config
	log  *slog.Logger
	api  *http.ServeMux // the /api/ routes
	ping time.Duration  // between an event stream's pings

	stopping atomic.Bool // POST /api/v1/stop was accepted
	stopOnce sync.Once
}

// New returns the dashboard's handler for cfg: the API of spec.md under
// /api/v1/, /healthz, /metrics and the pages, all behind the access
// checks of spec.md (Host, token, Origin, Content-Type, body size).
func New(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg, defaultPing)
	if err != nil {
		return nil, err
	}
	return s.handler(), nil
}

// newServer checks cfg and makes the server, its streams pinged every
// ping.
func newServer(cfg Config, ping time.Duration) (*server, error) {
	if cfg.Jobs == nil || cfg.Executors == nil || cfg.Info == nil {
		return nil, errors.New("web: the Config needs Jobs, Executors and Info")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, log: log, api: http.NewServeMux(), ping: ping}
	s.routes()
	return s, nil
}

// routes registers the API's routes on s.api.
func (s *server) routes() {
	m := s.api
	m.HandleFunc("GET /api/v1/info", s.info)
	m.HandleFunc("POST /api/v1/jobs", s.submit)
	m.HandleFunc("GET /api/v1/jobs", s.list)
	m.HandleFunc("GET /api/v1/jobs/{id}", s.job)
	m.HandleFunc("GET /api/v1/jobs/{id}/output", s.output)
	m.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.cancel)
	m.HandleFunc("GET /api/v1/executors", s.executors)
	m.HandleFunc("GET /api/v1/queue", s.queue)
	m.HandleFunc("GET /api/v1/locals", s.withLocals(s.locals))
	m.HandleFunc("PUT /api/v1/locals", s.withLocals(s.setLocals))
	m.HandleFunc("POST /api/v1/locals", s.withLocals(s.startLocal))
	m.HandleFunc("DELETE /api/v1/locals/{name}", s.withLocals(s.stopLocal))
	m.HandleFunc("POST /api/v1/stop", s.stop)
}

// handler is the whole dashboard behind the access checks.
func (s *server) handler() http.Handler {
	top := http.NewServeMux()
	top.HandleFunc("/api/", s.serveAPI)
	top.HandleFunc("GET /healthz", s.healthz)
	if s.cfg.Metrics != nil {
		top.Handle("GET /metrics", s.cfg.Metrics)
	}
	top.Handle("/", pages())
	return s.guard(top)
}

// serveAPI routes an API request, answering unknown routes (404) and
// methods (405, with Allow) in JSON as every other API error.
func (s *server) serveAPI(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.api.Handler(r)
	if pattern == "" {
		// The mux's own 404 or 405: keep its status and Allow, answer JSON.
		h.ServeHTTP(&jsonStatus{ResponseWriter: w}, r)
		return
	}
	s.api.ServeHTTP(w, r)
}

// jsonStatus turns the mux's plain-text 404 and 405 into JSON errors.
type jsonStatus struct {
	http.ResponseWriter
	wrote bool
}

// WriteHeader writes the JSON error of code instead of the mux's text.
func (j *jsonStatus) WriteHeader(code int) {
	if j.wrote {
		return
	}
	j.wrote = true
	err := errNotFound
	if code == http.StatusMethodNotAllowed {
		err = errMethod
	}
	j.ResponseWriter.Header().Del("Content-Length")
	writeJSON(j.ResponseWriter, code, map[string]string{"error": err.msg})
}

// Write drops the mux's text.
func (j *jsonStatus) Write(b []byte) (int, error) {
	if !j.wrote {
		j.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

// guard checks every request as spec.md's "Transport and access" says
// before next sees it: the Host (421), the token (401), the Origin of a
// POST, PUT or DELETE (403), the Content-Type of a POST or PUT with a
// body (415), and the body's size (413).
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := s.cfg.Info()
		// The Host check stops DNS rebinding against a dashboard that
		// needs no token (loopback); with a token, any name of the
		// machine (aliases, addresses behind NAT) may reach it.
		if s.cfg.Token == "" && !s.hostAllowed(r, info) {
			writeError(w, r, s.log, errWrongHost)
			return
		}
		if !s.authorized(w, r) {
			writeError(w, r, s.log, errTokenRequired)
			return
		}
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodDelete:
			if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, ownOrigin(r, info)) {
				writeError(w, r, s.log, errCrossSite)
				return
			}
		}
		if (r.Method == http.MethodPost || r.Method == http.MethodPut) && hasBody(r) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, r, s.log, errNotJSON)
				return
			}
		}
		if r.ContentLength > maxBody {
			writeError(w, r, s.log, errBodyTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// hasBody reports whether r comes with a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// hostAllowed reports whether r's Host is the listen address, one of
// cfg.Hosts, or localhost, 127.0.0.1 or [::1] on the listen port.
func (s *server) hostAllowed(r *http.Request, info Info) bool {
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		// A browser leaves out the scheme's default port.
		port := "80"
		if r.TLS != nil || info.HTTPS {
			port = "443"
		}
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	allowed := append([]string{info.HTTP}, s.cfg.Hosts...)
	if _, port, err := net.SplitHostPort(info.HTTP); err == nil {
		allowed = append(allowed, "localhost:"+port, "127.0.0.1:"+port, "[::1]:"+port)
	}
	for _, a := range allowed {
		if a != "" && strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// ownOrigin is the origin of the pages this server serves to r.
func ownOrigin(r *http.Request, info Info) string {
	scheme := "http"
	if r.TLS != nil || info.HTTPS {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// authorized reports whether r carries the token (always when none is
// required): as a Bearer, as ?token= on a GET (then the cookie is set
// for the next requests), or in the cookie.
func (s *server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	if a := r.Header.Get("Authorization"); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok && s.tokenIs(strings.TrimSpace(t)) {
			return true
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if t := r.URL.Query().Get("token"); t != "" && s.tokenIs(t) {
			http.SetCookie(w, &http.Cookie{
				Name: tokenCookie, Value: t, Path: "/",
				HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
			})
			return true
		}
	}
	if c, err := r.Cookie(tokenCookie); err == nil && s.tokenIs(c.Value) {
		return true
	}
	return false
}

// tokenIs compares t with the token in constant time.
func (s *server) tokenIs(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.Token)) == 1
}

// healthz answers "ok" while serving, 503 once stopping.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("stopping\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
