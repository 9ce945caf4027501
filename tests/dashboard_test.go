package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dashboard's browser tests drive Debian's Chromium, headless, with
// chromedp: the pages as a user sees them, served by a real master. Each
// saves a screenshot when it fails (in RESH_TEST_ARTIFACTS, else the
// temporary directory). With RESH_SCREENSHOTS=DIR, the tests that show a
// page at its best save it there (docs/ holds the README's).

var dashboardRE = regexp.MustCompile(`reshd: dashboard on (\S+)`)

// dashboardURL is the URL master d printed for its dashboard.
func (d *daemon) dashboardURL(t testing.TB) string {
	t.Helper()
	m := dashboardRE.FindStringSubmatch(d.waitLog(t, 10*time.Second, "reshd: dashboard on"))
	require.NotNil(t, m)
	return m[1]
}

// page is a Chromium tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openBrowser starts a headless Chromium for t, with a tab, ended with
// the test; the test fails if Chromium is not installed (.ci/run installs
// it). insecureCerts accepts self-signed certificates.
func openBrowser(t *testing.T, insecureCerts bool) *page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install chromium; .ci/run does): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	if insecureCerts {
		opts = append(opts, chromedp.IgnoreCertErrors)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel(); cancel() })
	require.NoError(t, chromedp.Do(bctx), "start chromium")
	p := &page{t: t, ctx: bctx}
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshot(artifactsDir(t), strings.ReplaceAll(t.Name(), "/", "_")+".png")
		}
	})
	return p
}

// artifactsDir is where failing tests leave their screenshots.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("RESH_TEST_ARTIFACTS"); d != "" {
		return d
	}
	d := filepath.Join(os.TempDir(), "resh-test-screenshots")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Logf("screenshots: %v", err)
	}
	return d
}

// screenshot saves the whole page as dir/name (PNG).
func (p *page) screenshot(dir, name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot: %s", path)
}

// keep saves the page as name in RESH_SCREENSHOTS, when set.
func (p *page) keep(name string) {
	if dir := os.Getenv("RESH_SCREENSHOTS"); dir != "" {
		p.screenshot(dir, name)
	}
}

// run runs actions, failing the test on error.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, actions...), what)
}

// eval evaluates the JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, expr)
	return v
}

// until waits (up to within) for the JavaScript expression to be true.
func (p *page) until(within time.Duration, what, expr string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		log, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(document.querySelector('#log')||{}).textContent||''`))
		p.t.Fatalf("%s: not within %v (%v); the page's log: %s", what, within, err, log)
	}
}

// text is the text of the element sel.
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// jsText is a JavaScript expression for the text of sel ("" if absent).
func jsText(sel string) string {
	return fmt.Sprintf(`((document.querySelector(%q)||{}).textContent||'')`, sel)
}

// writeFile writes content to name in a new temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// submitFile loads path through the file picker, sets the arguments and
// stdin, and submits; it returns once the page shows a job id.
func (p *page) submitFile(path, args, stdin string) {
	p.t.Helper()
	p.run("pick "+path, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path}))
	want := strings.SplitN(readFile(p.t, path), "\n", 2)[0]
	p.until(10*time.Second, "the editor shows the file", fmt.Sprintf(`document.querySelector('#editor').value.includes(%q)`, want))
	// (chromedp cannot tell an empty value set from a failure: the
	// fields start empty.)
	if args != "" {
		p.run("fill in the arguments", chromedp.SetValue(chromedp.CSS("#args"), args))
	}
	if stdin != "" {
		p.run("fill in stdin", chromedp.SetValue(chromedp.CSS("#stdin"), stdin))
	}
	p.run("submit", chromedp.Click(chromedp.CSS("#submit")))
	p.until(15*time.Second, "a job id shown", jsText("#job-id")+`.match(/[0-9]/) !== null`)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

const dashboardC = `#include <stdio.h>
int main(int argc, char **argv) {
    char line[100];
    printf("hello");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    if (fgets(line, sizeof line, stdin)) printf("read: %s", line);
    fprintf(stderr, "to stderr\n");
    return 0;
}
`

// The client page: a C program picked with the file picker, with
// arguments and stdin, runs on the master's executor; its stdout and
// stderr appear apart, then its verdict and exit status, and the job is
// in the list.
func TestDashboardRunsCProgram(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "1", "-http", "127.0.0.1:0"}, "local-1")
	showLogsOnFailure(t, m)
	p := openBrowser(t, false)
	p.run("open the client page", chromedp.Navigate(m.dashboardURL(t)), chromedp.WaitVisible(chromedp.CSS("#submit")))
	p.submitFile(writeFile(t, "hello.c", dashboardC), "alpha beta", "some input\n")
	p.until(60*time.Second, "the verdict OK", jsText("#verdict")+`.includes('OK')`)
	assert.Equal(t, "hello alpha beta\nread: some input\n", p.text("#stdout"))
	assert.Equal(t, "to stderr\n", p.text("#stderr"))
	assert.Contains(t, p.text("#exit"), "0")
	id := strings.TrimPrefix(strings.TrimSpace(p.text("#job-id")), "#")
	p.until(10*time.Second, "the job in the list", jsText("#jobs")+`.includes('hello.c')`)
	p.keep("dashboard-client.png")
	assert.NotEmpty(t, id)
}

// A compile error shows the compiler's message and the verdict.
func TestDashboardCompileError(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "1", "-http", "127.0.0.1:0"}, "local-1")
	showLogsOnFailure(t, m)
	p := openBrowser(t, false)
	p.run("open the client page", chromedp.Navigate(m.dashboardURL(t)), chromedp.WaitVisible(chromedp.CSS("#submit")))
	p.submitFile(writeFile(t, "broken.c", "int main(void) {\n    return missing_name;\n}\n"), "", "")
	p.until(60*time.Second, "the verdict COMPILE_ERROR", jsText("#verdict")+`.includes('COMPILE_ERROR')`)
	errs := p.text("#stderr")
	assert.Contains(t, errs, "missing_name")
	assert.Contains(t, errs, "error")
	assert.Empty(t, strings.TrimSpace(p.text("#stdout")))
}

// The server page's executors table follows executors joining and
// leaving, and its button starts a local executor.
func TestDashboardExecutorsTable(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-http", "127.0.0.1:0"})
	showLogsOnFailure(t, m)
	p := openBrowser(t, false)
	url := strings.TrimSuffix(m.dashboardURL(t), "/") + "/server"
	p.run("open the server page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#executors")))
	row := func(name string) string {
		return fmt.Sprintf(`document.querySelector('#executors tr[data-name=%q]')`, name)
	}
	p.until(10*time.Second, "no executor yet", row("by-hand")+` === null`)

	ex := startExecutor(t, m, "by-hand")
	p.until(10*time.Second, "the executor that joined is listed", row("by-hand")+` !== null`)

	p.run("start a local executor", chromedp.Click(chromedp.CSS("#locals-start")))
	m.waitJoined(t, "local-1")
	p.until(10*time.Second, "the local executor is listed, up", row("local-1")+` !== null && `+row("local-1")+`.textContent.includes('up')`)
	p.until(10*time.Second, "the master's languages shown", jsText("#info")+`.includes('python')`)
	p.keep("dashboard-server.png")

	ex.stop()
	p.until(20*time.Second, "the executor that left is gone", row("by-hand")+` === null`)
	assert.Contains(t, p.text("#executors"), "local-1")
}

// Off loopback the dashboard is HTTPS and needs the token: without it
// every path answers 401 and nothing else; the URL reshd prints (with the
// token) opens the page, and the cookie it sets opens the other.
func TestDashboardTokenOffLoopback(t *testing.T) {
	t.Parallel()
	// A wildcard address is not loopback; the test reaches it through
	// 127.0.0.1.
	m := startMaster(t, []string{"-http", "0.0.0.0:0"})
	showLogsOnFailure(t, m)
	printed := m.dashboardURL(t)
	require.True(t, strings.HasPrefix(printed, "https://"), printed)
	tok := printed[strings.Index(printed, "?token=")+len("?token="):]
	_, port, err := net.SplitHostPort(strings.SplitN(strings.TrimPrefix(printed, "https://"), "/", 2)[0])
	require.NoError(t, err)
	base := "https://127.0.0.1:" + port

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, path := range []string{"/", "/server", "/static/client.js", "/api/v1/info", "/api/v1/jobs", "/metrics", "/healthz"} {
		resp, err := hc.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		assert.JSONEq(t, `{"error":"token required"}`, string(body), path)

		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err = hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path+" with the token")
	}
	resp, err := hc.Get("http://127.0.0.1:" + port + "/")
	if err == nil {
		resp.Body.Close()
		assert.NotEqual(t, http.StatusOK, resp.StatusCode, "plain HTTP off loopback")
	}

	p := openBrowser(t, true)
	p.run("open without the token", chromedp.Navigate(base+"/"))
	p.until(10*time.Second, "401 shown", `document.body.textContent.includes('token required')`)
	found := eval[bool](p, `document.querySelector('#submit') !== null`)
	assert.False(t, found, "the page must not be served without the token")

	p.run("open with the token", chromedp.Navigate(base+"/?token="+tok), chromedp.WaitVisible(chromedp.CSS("#submit")))
	p.run("the server page with the cookie", chromedp.Navigate(base+"/server"), chromedp.WaitVisible(chromedp.CSS("#executors")))
}

// The page keeps working across a master restart: a job's output, live
// when the master is killed (-9), goes on from where it was once the
// master is back on the same ports, each line once.
func TestDashboardSurvivesMasterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reshAddr, httpAddr := freeLoopback(t), freeLoopback(t)
	flags := append([]string{"-master", "-executor-timeout", "5s", "-http", httpAddr}, storeFlag(dir)...)
	m := startReshdAt(t, reshAddr, nil, flags...)
	showLogsOnFailure(t, m)
	ex := startExecutor(t, m, "steady", "-max-tasks", "1")
	showLogsOnFailure(t, ex)

	p := openBrowser(t, false)
	p.run("open the client page", chromedp.Navigate(m.dashboardURL(t)), chromedp.WaitVisible(chromedp.CSS("#submit")))
	const lines = 40
	p.submitFile(slowJob(t, lines, 0.1), "", "")
	p.until(30*time.Second, "the first lines", jsText("#stdout")+`.includes('5\n')`)

	kill9(t, m)
	m2 := startReshdAt(t, reshAddr, nil, flags...)
	showLogsOnFailure(t, m2)
	m2.waitJoined(t, "steady")

	p.until(60*time.Second, "the verdict OK", jsText("#verdict")+`.includes('OK')`)
	assert.Equal(t, countTo(lines), p.text("#stdout"), "the whole output, no gap, no duplicate")
}

// freeLoopback returns a 127.0.0.1 address whose port was free a moment
// ago (for a server that must come back on the same one).
func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// The API sets how many local executors run: they join, and leave when
// their number goes down (the highest numbered first); the server page's
// buttons do just this.
func TestDashboardAPISetsLocalExecutors(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-http", "127.0.0.1:0"})
	showLogsOnFailure(t, m)
	base := strings.TrimSuffix(m.dashboardURL(t), "/")
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := call("PUT", "/api/v1/locals", `{"count":2}`)
	require.Equal(t, http.StatusOK, code, body)
	m.waitJoined(t, "local-1")
	m.waitJoined(t, "local-2")
	// On their side too (their log is the master's): one stopped before
	// it reads the master's Welcome closes its link without a Leave, and
	// the master says "executor lost", not "executor left".
	m.waitLog(t, 10*time.Second, "joined the master", "name=local-1")
	m.waitLog(t, 10*time.Second, "joined the master", "name=local-2")

	code, body = call("PUT", "/api/v1/locals", `{"count":1}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.NotContains(t, body, "local-2")
	m.waitLog(t, 10*time.Second, "executor left", "name=local-2")

	code, body = call("DELETE", "/api/v1/locals/local-9", "")
	assert.Equal(t, http.StatusNotFound, code, body)
	code, body = call("PUT", "/api/v1/locals", `{"count":65}`)
	assert.Equal(t, http.StatusBadRequest, code, body)

	code, body = call("DELETE", "/api/v1/locals/local-1", "")
	require.Equal(t, http.StatusOK, code, body)
	m.waitLog(t, 10*time.Second, "executor left", "name=local-1")
	code, body = call("GET", "/api/v1/locals", "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"count":0,"max":64,"executors":[]}`, body)
}

// The server page's stop button asks first: cancelling leaves the master
// running; confirming stops it (it exits 0, its local executors with
// it), and the page says so.
func TestDashboardStopsMaster(t *testing.T) {
	t.Parallel()
	m := startMaster(t, []string{"-local", "1", "-http", "127.0.0.1:0"}, "local-1")
	showLogsOnFailure(t, m)
	p := openBrowser(t, false)
	p.run("open the server page", chromedp.Navigate(strings.TrimSuffix(m.dashboardURL(t), "/")+"/server"), chromedp.WaitVisible(chromedp.CSS("#stop-master")))

	p.run("ask, then cancel", chromedp.Click(chromedp.CSS("#stop-master")), chromedp.WaitVisible(chromedp.CSS("#stop-confirm")))
	p.run("cancel", chromedp.Click(chromedp.CSS("#stop-dialog button:not(#stop-confirm)")))
	p.until(5*time.Second, "the dialog closed", `!document.querySelector('#stop-dialog').open`)
	resp, err := http.Get(strings.TrimSuffix(m.dashboardURL(t), "/") + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "still serving after cancel")

	var locals struct {
		Executors []struct{ PID int } `json:"executors"`
	}
	resp, err = http.Get(strings.TrimSuffix(m.dashboardURL(t), "/") + "/api/v1/locals")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&locals))
	resp.Body.Close()
	require.Len(t, locals.Executors, 1)
	localPID := locals.Executors[0].PID
	require.NotZero(t, localPID)

	p.run("ask, then stop", chromedp.Click(chromedp.CSS("#stop-master")), chromedp.WaitVisible(chromedp.CSS("#stop-confirm")))
	p.run("confirm", chromedp.Click(chromedp.CSS("#stop-confirm")))
	// Exited (a zombie until the test reaps it), its local executor too.
	require.Eventually(t, func() bool { return !processAlive(m.cmd.Process.Pid) }, 30*time.Second, 20*time.Millisecond, "reshd stops")
	require.Eventually(t, func() bool { return !processAlive(localPID) }, 10*time.Second, 20*time.Millisecond, "its local executor stops with it")
	m.waitLog(t, 5*time.Second, "reshd: shutting down")
	p.until(15*time.Second, "the page says the master stopped", jsText("#stopped-banner")+`.includes('stopped')`)
	require.NoError(t, m.cmd.Wait(), "reshd exits 0 when stopped from the page")
}
