package web

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// wantCSP is the policy every page and asset must carry.
const wantCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// staticFiles returns the embedded assets by name under static/.
func staticFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte)
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(name)
		files[strings.TrimPrefix(name, "static/")] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []string{"index.html", "server.html", "style.css", "client.js", "server.js"} {
		if files[need] == nil {
			t.Fatalf("static/%s is missing", need)
		}
	}
	return files
}

func getAsset(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func checkSecurityHeaders(t *testing.T, target string, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("%s: Content-Security-Policy %q, want %q", target, got, wantCSP)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", target, got)
	}
}

func TestPagesServed(t *testing.T) {
	files := staticFiles(t)
	h := pages()
	wantType := map[string]string{
		".html": "text/html; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	targets := map[string]string{"/": "index.html", "/server": "server.html"}
	for name := range files {
		targets["/static/"+name] = name
	}
	for target, name := range targets {
		ct, ok := wantType[path.Ext(name)]
		if !ok {
			t.Errorf("static/%s: no Content-Type known to the test", name)
			continue
		}
		w := getAsset(t, h, http.MethodGet, target)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", target, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != ct {
			t.Errorf("GET %s: Content-Type %q, want %q", target, got, ct)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", target, got)
		}
		checkSecurityHeaders(t, target, w)
		if !bytes.Equal(w.Body.Bytes(), files[name]) {
			t.Errorf("GET %s: not static/%s", target, name)
		}
		head := getAsset(t, h, http.MethodHead, target)
		if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Type") != ct {
			t.Errorf("HEAD %s: %d, %d bytes, %q", target, head.Code, head.Body.Len(), head.Header().Get("Content-Type"))
		}
		// The ETag revalidates (no-cache means: ask each time).
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", target)
			continue
		}
		if again := getAsset(t, h, http.MethodGet, target, "If-None-Match", etag); again.Code != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match: %d, want 304", target, again.Code)
		}
	}
}

func TestPagesUnknown404(t *testing.T) {
	h := pages()
	for _, target := range []string{
		"/nope", "/index.html", "/server/", "/servers", "/static", "/static/", "/static/nope.js",
		"/static/../assets.go", "/static/index.html/", "/STATIC/style.css", "/api", "/favicon.ico",
	} {
		w := getAsset(t, h, http.MethodGet, target)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
			continue
		}
		checkSecurityHeaders(t, target, w)
		if !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("GET %s: body %q, want a JSON error", target, w.Body.String())
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := getAsset(t, h, m, "/")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" {
			t.Errorf("%s /: %d (Allow %q), want 405 with Allow", m, w.Code, w.Header().Get("Allow"))
		}
	}
}

// svgNamespace is the one "http://" an asset may hold: a name, never fetched.
const svgNamespace = `xmlns="http://www.w3.org/2000/svg"`

var (
	cssURL      = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")]*)`)
	jsImport    = regexp.MustCompile(`(?m)(?:^|[;\s])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]`)
	jsDoubleURL = regexp.MustCompile("['\"`]//")
	jsURLCall   = regexp.MustCompile("(?:fetch|EventSource)\\(\\s*['\"`]([^'\"`]*)|api\\(\\s*'[A-Z]+',\\s*['\"`]([^'\"`]*)")
)

// localRef reports whether a reference stays on this server: a path from
// the root or relative, a fragment, or a data: URI (images).
func localRef(ref string) bool {
	ref = strings.TrimSpace(ref)
	low := strings.ToLower(ref)
	switch {
	case ref == "", strings.HasPrefix(ref, "#"):
		return true
	case strings.HasPrefix(ref, "//"), strings.HasPrefix(ref, `\\`), strings.HasPrefix(ref, `/\`):
		return false
	case strings.HasPrefix(low, "data:"):
		return true
	case strings.Contains(strings.SplitN(ref, "/", 2)[0], ":"):
		return false // a scheme: http:, https:, javascript:, ...
	}
	return true
}

func TestAssetsNoExternalURL(t *testing.T) {
	for name, body := range staticFiles(t) {
		text := string(body)
		if path.Ext(name) == ".svg" {
			text = strings.ReplaceAll(text, svgNamespace, "")
		}
		low := strings.ToLower(text)
		for _, bad := range []string{"http://", "https://", "@import", "ws://", "wss://"} {
			if i := strings.Index(low, bad); i >= 0 {
				t.Errorf("static/%s: %q at byte %d", name, bad, i)
			}
		}
		for _, m := range cssURL.FindAllStringSubmatch(text, -1) {
			if !localRef(m[1]) {
				t.Errorf("static/%s: url(%s) leaves the server", name, m[1])
			}
		}
		switch path.Ext(name) {
		case ".html", ".svg":
			doc := parseHTML(t, name, body)
			walkHTML(doc, func(n *html.Node) {
				for _, a := range n.Attr {
					switch a.Key {
					case "src", "href", "action", "formaction", "poster", "data", "srcset", "xlink:href", "manifest":
						if !localRef(a.Val) {
							t.Errorf("static/%s: <%s %s=%q> leaves the server", name, n.Data, a.Key, a.Val)
						}
					}
				}
			})
		case ".js":
			if loc := jsDoubleURL.FindStringIndex(text); loc != nil {
				t.Errorf("static/%s: a string starts with // at byte %d", name, loc[0])
			}
			for _, m := range jsImport.FindAllStringSubmatch(text, -1) {
				spec := m[1] + m[2]
				if !strings.HasPrefix(spec, "./") && !(strings.HasPrefix(spec, "/") && !strings.HasPrefix(spec, "//")) {
					t.Errorf("static/%s: import of %q", name, spec)
				}
			}
			for _, m := range jsURLCall.FindAllStringSubmatch(text, -1) {
				u := m[1] + m[2]
				if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
					t.Errorf("static/%s: a request to %q", name, u)
				}
			}
		}
	}
}

func parseHTML(t *testing.T, name string, body []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("static/%s: %v", name, err)
	}
	return doc
}

func walkHTML(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walkHTML(c, f)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// htmlPages returns the parsed pages by name.
func htmlPages(t *testing.T) map[string]*html.Node {
	t.Helper()
	docs := make(map[string]*html.Node)
	for name, body := range staticFiles(t) {
		if path.Ext(name) == ".html" {
			docs[name] = parseHTML(t, name, body)
		}
	}
	return docs
}

func TestPagesNoInlineScriptOrStyle(t *testing.T) {
	for name, doc := range htmlPages(t) {
		walkHTML(doc, func(n *html.Node) {
			switch n.Data {
			case "script":
				if _, ok := attr(n, "src"); !ok {
					t.Errorf("%s: a <script> without src", name)
				}
				if textOf(n) != "" {
					t.Errorf("%s: an inline <script> body", name)
				}
			case "style":
				t.Errorf("%s: a <style> element", name)
			}
			for _, a := range n.Attr {
				if a.Key == "style" {
					t.Errorf("%s: <%s style=%q>", name, n.Data, a.Val)
				}
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: <%s %s=...>: an inline event handler", name, n.Data, a.Key)
				}
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					t.Errorf("%s: <%s %s=%q>", name, n.Data, a.Key, a.Val)
				}
			}
		})
	}
	// Nor may the scripts put inline styles or code in (CSP refuses them).
	for name, body := range staticFiles(t) {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, bad := range []string{"eval(", "new Function", "setAttribute('style'", `setAttribute("style"`, "style=", "document.write"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("static/%s: %q (refused by the CSP or unsafe)", name, bad)
			}
		}
	}
}

func TestPagesLabels(t *testing.T) {
	for name, doc := range htmlPages(t) {
		labelled := make(map[string]bool)
		ids := make(map[string]bool)
		walkHTML(doc, func(n *html.Node) {
			if id, ok := attr(n, "id"); ok {
				ids[id] = true
			}
			if n.Data == "label" {
				if f, ok := attr(n, "for"); ok {
					labelled[f] = true
				}
			}
		})
		walkHTML(doc, func(n *html.Node) {
			switch n.Data {
			case "input", "select", "textarea":
				if typ, _ := attr(n, "type"); typ == "hidden" {
					return
				}
				if v, ok := attr(n, "aria-label"); ok && strings.TrimSpace(v) != "" {
					return
				}
				if v, ok := attr(n, "aria-labelledby"); ok && ids[v] {
					return
				}
				id, _ := attr(n, "id")
				if id == "" || !labelled[id] {
					t.Errorf("%s: <%s id=%q> has no <label for> nor aria-label", name, n.Data, id)
				}
			case "button":
				if typ, _ := attr(n, "type"); typ != "button" && typ != "submit" {
					t.Errorf("%s: <button> %q without type", name, textOf(n))
				}
				if aria, _ := attr(n, "aria-label"); textOf(n) == "" && aria == "" {
					t.Errorf("%s: a <button> with no name", name)
				}
			case "label":
				if f, ok := attr(n, "for"); ok && !ids[f] {
					t.Errorf("%s: <label for=%q> names no element", name, f)
				}
			}
		})
	}
}

func TestPagesStructure(t *testing.T) {
	want := map[string][]string{
		"index.html": {"submit", "lang", "filename", "args", "stdin", "editor", "file", "template",
			"limit-wall", "limit-cpu", "limit-mem", "limit-procs", "limit-output", "stdout", "stderr",
			"verdict", "exit", "job-id", "jobs", "log"},
		"server.html": {"executors", "locals-count", "locals-set", "locals-start", "queue", "recent",
			"stop-master", "stop-dialog", "stop-confirm", "info", "log"},
	}
	docs := htmlPages(t)
	for name, ids := range want {
		doc := docs[name]
		seen := make(map[string]int)
		tags := make(map[string]int)
		var lang, title string
		links := make(map[string]bool)
		walkHTML(doc, func(n *html.Node) {
			tags[n.Data]++
			if id, ok := attr(n, "id"); ok {
				seen[id]++
			}
			switch n.Data {
			case "html":
				lang, _ = attr(n, "lang")
			case "title":
				title = textOf(n)
			case "a":
				href, _ := attr(n, "href")
				links[href] = true
			}
		})
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("%s: #%s appears %d times, want once", name, id, seen[id])
			}
		}
		for id, n := range seen {
			if n > 1 {
				t.Errorf("%s: id %q is used %d times", name, id, n)
			}
		}
		if lang != "en" || title == "" {
			t.Errorf("%s: lang %q, title %q", name, lang, title)
		}
		for _, tag := range []string{"header", "main", "nav"} {
			if tags[tag] == 0 {
				t.Errorf("%s: no <%s>", name, tag)
			}
		}
		other := map[string]string{"index.html": "/server", "server.html": "/"}[name]
		if !links[other] {
			t.Errorf("%s: no link to %s", name, other)
		}
	}
	// The tables the scripts fill.
	for name, tables := range map[string][]string{"index.html": {"jobs"}, "server.html": {"executors", "queue", "recent"}} {
		walkHTML(docs[name], func(n *html.Node) {
			id, _ := attr(n, "id")
			for _, want := range tables {
				if id == want && n.Data != "table" {
					t.Errorf("%s: #%s is a <%s>, want a <table>", name, id, n.Data)
				}
			}
			if id == "stop-dialog" && n.Data != "dialog" {
				t.Errorf("%s: #stop-dialog is a <%s>", name, n.Data)
			}
			if id == "log" {
				if v, _ := attr(n, "aria-live"); v != "polite" {
					t.Errorf("%s: #log aria-live %q", name, v)
				}
			}
		})
	}
}

// TestStaticReferences checks that what the pages load exists.
func TestStaticReferences(t *testing.T) {
	files := staticFiles(t)
	for name, doc := range htmlPages(t) {
		walkHTML(doc, func(n *html.Node) {
			for _, key := range []string{"src", "href"} {
				v, ok := attr(n, key)
				if !ok || !strings.HasPrefix(v, "/static/") {
					continue
				}
				if files[strings.TrimPrefix(v, "/static/")] == nil {
					t.Errorf("%s: %s=%q: no such asset", name, key, v)
				}
			}
			if n.Data == "script" {
				if typ, _ := attr(n, "type"); typ != "module" {
					t.Errorf("%s: <script type=%q>, want module", name, typ)
				}
			}
		})
	}
	for name, body := range files {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range jsImport.FindAllStringSubmatch(string(body), -1) {
			spec := m[1] + m[2]
			if files[path.Clean(strings.TrimPrefix(strings.TrimPrefix(spec, "/static/"), "./"))] == nil {
				t.Errorf("static/%s imports %q: no such asset", name, spec)
			}
		}
	}
}

// TestStaticJSSyntax parses every script as an ES module with node, when
// node is installed.
func TestStaticJSSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	for name, body := range staticFiles(t) {
		if path.Ext(name) != ".js" {
			continue
		}
		cmd := exec.Command(node, "--input-type=module", "--check")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("static/%s: %v\n%s", name, err, out)
		}
	}
}

var (
	cssBlock = regexp.MustCompile(`(?s)(@media \(prefers-color-scheme: dark\) \{\s*)?:root \{(.*?)\}`)
	cssVar   = regexp.MustCompile(`--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\b`)
)

// TestStaticContrast checks the colour pairs the stylesheet uses for text
// against WCAG AA (4.5:1), in the light and the dark scheme.
func TestStaticContrast(t *testing.T) {
	css := string(staticFiles(t)["style.css"])
	blocks := cssBlock.FindAllStringSubmatch(css, -1)
	if len(blocks) != 2 {
		t.Fatalf("style.css: %d :root blocks, want 2 (light, dark)", len(blocks))
	}
	pairs := [][2]string{
		{"text", "bg"}, {"text", "card"}, {"text", "field"}, {"text", "code-bg"}, {"muted", "card"},
		{"muted", "bg"}, {"muted", "code-bg"}, {"accent-text", "accent"}, {"accent-text", "accent-hover"},
		{"topbar-text", "topbar"}, {"topbar-link", "topbar"}, {"gutter-text", "gutter-bg"},
		{"ok-text", "ok-bg"}, {"err-text", "err-bg"}, {"run-text", "run-bg"}, {"queued-text", "queued-bg"},
		{"warn-text", "warn-bg"}, {"stderr-text", "code-bg"}, {"stderr-text", "card"}, {"text", "row-current"},
		{"text", "row-hover"}, {"link", "card"}, {"link", "bg"},
		{"tok-kw", "code-bg"}, {"tok-type", "code-bg"}, {"tok-str", "code-bg"}, {"tok-com", "code-bg"},
		{"tok-num", "code-bg"}, {"tok-pre", "code-bg"}, {"tok-dec", "code-bg"}, {"tok-builtin", "code-bg"},
		{"tok-var", "code-bg"},
	}
	light := map[string]string{}
	for i, b := range blocks {
		vars := map[string]string{}
		if i == 1 {
			for k, v := range light {
				vars[k] = v // the dark scheme inherits what it does not set
			}
		}
		for _, m := range cssVar.FindAllStringSubmatch(b[2], -1) {
			vars[m[1]] = m[2]
		}
		if i == 0 {
			light = vars
		}
		scheme := []string{"light", "dark"}[i]
		for _, p := range pairs {
			fg, bg := vars[p[0]], vars[p[1]]
			if fg == "" || bg == "" {
				t.Errorf("%s: --%s or --%s is not a #rrggbb colour", scheme, p[0], p[1])
				continue
			}
			if r := contrast(fg, bg); r < 4.5 {
				t.Errorf("%s: --%s %s on --%s %s: contrast %.2f < 4.5", scheme, p[0], fg, p[1], bg, r)
			}
		}
		// White on the danger buttons (fixed colour).
		if r := contrast("#ffffff", vars["danger"]); r < 4.5 {
			t.Errorf("%s: white on --danger: %.2f", scheme, r)
		}
	}
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	var c [3]float64
	for i := range c {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			panic(fmt.Sprint(hex, err))
		}
		s := float64(v) / 255
		if s <= 0.04045 {
			c[i] = s / 12.92
		} else {
			c[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}
