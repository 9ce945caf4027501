package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// static holds the dashboard's pages and their assets: plain HTML, CSS
// and JavaScript written for it, nothing fetched from elsewhere.
//
//go:embed static
var static embed.FS

// pageCSP is the Content-Security-Policy of every page and asset: nothing
// but this server's own files; no inline script or style.
const pageCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; " +
	"script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// contentTypes maps an asset's extension to its Content-Type; a file of
// another kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// asset is one embedded file ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// assetHandler serves the pages and /static/.
type assetHandler struct {
	files map[string]asset // by URL path
}

// pages serves GET / (the client page), GET /server (the server page) and
// GET /static/... (their assets), each with its Content-Type, no-cache
// and the strict CSP; anything else is 404.
func pages() http.Handler {
	h := &assetHandler{files: make(map[string]asset)}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.files["/"+name] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error()) // cannot happen: the files are in the binary
	}
	h.files["/"] = h.files["/static/index.html"]
	h.files["/server"] = h.files["/static/server.html"]
	return h
}

func (h *assetHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	a, ok := h.files[r.URL.Path]
	if !ok || a.body == nil {
		writeAssetError(w, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		writeAssetError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	// ServeContent answers If-None-Match (304) and Range from the ETag.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// writeAssetError answers as the API does: {"error":"message"}.
func writeAssetError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(`{"error":"` + msg + `"}` + "\n"))
}
