package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"resh/scheduler"
)

// Errors the API answers with. Their text is what the dashboard shows.
var (
	// errTokenRequired: the request carries no valid token (401).
	errTokenRequired = &httpError{http.StatusUnauthorized, "token required"}
	// errWrongHost: the Host header is not this server's (421).
	errWrongHost = &httpError{http.StatusMisdirectedRequest, "wrong Host: use the dashboard's own address"}
	// errCrossSite: a POST, PUT or DELETE from another origin (403).
	errCrossSite = &httpError{http.StatusForbidden, "cross-site request refused"}
	// errNotJSON: a POST or PUT body that is not application/json (415).
	errNotJSON = &httpError{http.StatusUnsupportedMediaType, "the request body must be application/json"}
	// errBodyTooLarge: a request body above maxBody (413).
	errBodyTooLarge = &httpError{http.StatusRequestEntityTooLarge, "the request body is larger than 24 MiB"}
	// errNotFound: no such route (404).
	errNotFound = &httpError{http.StatusNotFound, "not found"}
	// errMethod: the route has no such method (405).
	errMethod = &httpError{http.StatusMethodNotAllowed, "method not allowed"}
	// errNoLocals: the master cannot manage local executors (503).
	errNoLocals = &httpError{http.StatusServiceUnavailable, "this master cannot start local executors"}
	// errNoStop: the master cannot be stopped from here (503).
	errNoStop = &httpError{http.StatusServiceUnavailable, "this master cannot be stopped from the dashboard"}
	// errStopping: the master is stopping (503).
	errStopping = &httpError{http.StatusServiceUnavailable, "the master is stopping"}
)

// httpError is an error answered with its HTTP status.
type httpError struct {
	status int
	msg    string
}

// Error returns the message shown to the client.
func (e *httpError) Error() string { return e.msg }

// badRequest is a 400 with msg.
func badRequest(msg string) error { return &httpError{http.StatusBadRequest, msg} }

// tooLarge is a 413 with msg.
func tooLarge(msg string) error { return &httpError{http.StatusRequestEntityTooLarge, msg} }

// statusOf is the status err is answered with: an *httpError's own, the
// scheduler's errors mapped as spec.md says, 500 for anything else.
func statusOf(err error) int {
	var he *httpError
	var ended *scheduler.EndedError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, scheduler.ErrNoJob):
		return http.StatusNotFound
	case errors.As(err, &ended):
		return http.StatusConflict
	case errors.Is(err, scheduler.ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, scheduler.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNoLocal):
		return http.StatusNotFound
	case errors.Is(err, scheduler.ErrNoLanguage):
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen: the API's answers are plain data
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers err as {"error": "message"} with its status (see
// statusOf), logging those that are no fault of the client's.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		msg = errBodyTooLarge.msg
	}
	writeJSON(w, status, map[string]string{"error": msg})
}
