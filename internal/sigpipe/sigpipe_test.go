package sigpipe

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
)

func TestWanted(t *testing.T) {
	if want := !signal.Ignored(syscall.SIGPIPE); Wanted(os.Stdout) != want || Wanted(os.Stderr) != want {
		t.Errorf("stdout %v, stderr %v: want %v", Wanted(os.Stdout), Wanted(os.Stderr), want)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if Wanted(w) {
		t.Error("a pipe's descriptor (not 1 or 2): want false")
	}
	_ = w.Close()
	if Wanted(w) {
		t.Error("a closed file: want false")
	}
}

// Die, run in a child, kills it with SIGPIPE, as a broken standard output
// kills a Go program.
func TestDie(t *testing.T) {
	if os.Getenv("SIGPIPE_TEST_DIE") == "1" {
		Die()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDie$")
	cmd.Env = append(os.Environ(), "SIGPIPE_TEST_DIE=1")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v, want it killed", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if runtime.GOOS == "linux" {
		if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
			t.Errorf("child ended with %v, want killed by SIGPIPE", ws)
		}
	} else if ws.ExitStatus() != 141 {
		t.Errorf("child ended with %v, want status 141", ws)
	}
}
