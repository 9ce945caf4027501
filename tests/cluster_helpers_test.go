package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"resh/auth"
)

// startMaster starts reshd -master with flags (-local N among them, or
// not) and waits until each of the executors named in waitFor joined it.
func startMaster(t testing.TB, flags []string, waitFor ...string) *daemon {
	t.Helper()
	d := startReshd(t, append([]string{"-master"}, flags...)...)
	for _, name := range waitFor {
		d.waitJoined(t, name)
	}
	return d
}

// waitJoined waits until master d logs that the executor name joined.
func (d *daemon) waitJoined(t testing.TB, name string) {
	t.Helper()
	d.waitLog(t, 15*time.Second, "executor joined", "name="+name+" ")
}

var joiningRE = regexp.MustCompile(`reshd: executor (\S+) joining`)

// startExecutor starts an executor by hand, reshd -join master's address
// -name name with flags, in a RESH_HOME of its own whose key the master's
// executors file lists, and waits until the master says it joined. Its
// log is the returned daemon's.
func startExecutor(t testing.TB, master *daemon, name string, flags ...string) *daemon {
	t.Helper()
	return startExecutorAt(t, master, master.addr, name, flags...)
}

// startExecutorAt is startExecutor joining through addr (mitm, say)
// rather than the master's own address.
func startExecutorAt(t testing.TB, master *daemon, addr, name string, flags ...string) *daemon {
	t.Helper()
	home := t.TempDir()
	key, _, err := auth.LoadOrCreateIdentity(filepath.Join(home, auth.HostKeyFile))
	require.NoError(t, err)
	_, err = auth.AddAuthorizedKey(filepath.Join(os.Getenv("RESH_HOME"), auth.ExecutorsFile), auth.PublicKey(key), "test executor "+name)
	require.NoError(t, err)
	if master.insecure && !slices.Contains(flags, "-insecure") {
		flags = append(flags, "-insecure")
	}
	argv := append([]string{filepath.Join(bin, "reshd"), "-join", addr, "-name", name}, flags...)
	d, _ := startLogged(t, argv, []string{"RESH_HOME=" + home, "HOME=" + home}, joiningRE)
	d.home = home
	d.insecure = master.insecure
	master.waitJoined(t, name)
	return d
}

// waitLogN waits until d logged at least n lines containing every one of
// words (waitLog is n = 1): for an event that happens again, such as an
// executor joining a second time.
func (d *daemon) waitLogN(t testing.TB, within time.Duration, n int, words ...string) {
	t.Helper()
	deadline := time.After(within)
	for {
		d.logMu.Lock()
		count := 0
		for _, l := range d.log {
			if containsAll(l, words) {
				count++
			}
		}
		next := d.logged
		d.logMu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("did not log %q %d times within %v (%d so far)", words, n, within, count)
		}
	}
}
