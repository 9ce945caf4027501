package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/term"

	"resh/access"
	"resh/cat"
	"resh/proto"
	"resh/tee"
)

// transferStopWait bounds how long the end of resh waits for transfers
// it stopped: they hold no lock anything else needs.
const transferStopWait = time.Second

// transfers serves the streams reshd opens for lcat and ltee. They are not
// part of the session's wait: its end stops them (stop), and waits for
// them only a moment.
type transfers struct {
	r        *runner
	dirs     *access.Dirs
	progress Progress
	announce bool          // a line on stderr for each transfer
	line     *lineProgress // the progress line drawn on stderr, if any
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// clientDirs is what lcat and ltee may reach (access): resh's working
// directory and -allow, but nothing with -no-files, and resh's key
// directory, ~/.ssh and the -i key only where an -allow names them.
func (r *runner) clientDirs() (*access.Dirs, error) {
	if r.o.NoFiles {
		return access.None(), nil
	}
	dir := r.env.Dir
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
	}
	var protect []access.Protected
	home := lookupEnv(r.env.Environ, "HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	keys := lookupEnv(r.env.Environ, "RESH_HOME")
	if keys == "" && home != "" {
		keys = filepath.Join(home, ".resh")
	}
	if keys != "" {
		abs, err := filepath.Abs(keys)
		if err == nil {
			protect = append(protect, access.Protected{Dir: abs, Name: "resh's key directory " + abs})
		}
	}
	if home != "" {
		protect = append(protect, access.Protected{Dir: filepath.Join(home, ".ssh"), Name: "~/.ssh"})
	}
	if r.o.Identity != "" {
		if abs, err := filepath.Abs(r.o.Identity); err == nil {
			protect = append(protect, access.Protected{Dir: abs, Name: "resh's -i key"})
		}
	}
	return access.New(dir, r.o.Allow, protect...)
}

// serveTransfers accepts the streams reshd opens, until the session ends.
// Each transfer is announced on stderr when it is a terminal, or with -v;
// neither with -q, which also hides progress. A progress line drawn on the
// terminal guards resh's stderr from here on: call serveTransfers before
// the output starts.
func (r *runner) serveTransfers(sess *yamux.Session, wg *sync.WaitGroup, dirs *access.Dirs, progress Progress, stderrTerm bool) *transfers {
	if r.o.Quiet {
		progress = noProgress{}
	}
	t := &transfers{r: r, dirs: dirs, progress: progress, announce: (stderrTerm || r.o.Verbose) && !r.o.Quiet}
	if lp, ok := progress.(*lineProgress); ok {
		lp.install(r, terminalWidth(r.env.Stderr))
		t.line = lp
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.guard()
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				defer r.guard()
				t.serve(st)
			}()
		}
	}()
	return t
}

// wait waits at most d for the transfers under way to end, or for
// escaped.
func (t *transfers) wait(d time.Duration, escaped <-chan struct{}) {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-escaped:
	}
}

// stop ends every transfer, whatever it waits for, and waits for them a
// moment.
func (t *transfers) stop() {
	t.cancel()
	t.wait(transferStopWait, nil)
}

// Stdout returns what resh writes the command's stdout to: w, or when w
// is the terminal the progress line is drawn on, w guarded so that each
// write erases the line first (see lineProgress).
func (t *transfers) Stdout(w io.Writer) io.Writer {
	if t.line == nil || terminalWidth(w) == nil {
		return w
	}
	return t.line.output(w)
}

// terminalWidth returns a function giving v's width in columns when v is a
// terminal, nil otherwise.
func terminalWidth(v any) func() int {
	fd, ok := terminalFD(v)
	if !ok {
		return nil
	}
	return func() int {
		w, _, err := term.GetSize(fd)
		if err != nil {
			return 0
		}
		return w
	}
}

// notice prints one line about a transfer on resh's stderr (a progress
// line there is erased first: install guards stderr).
func (t *transfers) notice(format string, args ...any) {
	t.r.stderr.printf("resh: "+format+"%s", append(args, t.r.eol())...)
}

// meter is a transfer's progress, announced when its file is open.
type meter struct {
	Meter
	write  bool // ltee: the size at open is not the total
	opened func(size int64)
}

func (m meter) Opened(size int64) {
	if m.write {
		m.Meter.Opened(-1)
	} else {
		m.Meter.Opened(size)
	}
	if m.opened != nil {
		m.opened(size)
	}
}

// serve serves one stream reshd opened for lcat or ltee. A refusal, and
// with -v a read stopped early, are reported on stderr if transfers are
// announced; an ltee file left incomplete always is: nobody else can.
func (t *transfers) serve(st *yamux.Stream) {
	defer st.Close()
	var open proto.TransferOpen
	if err := proto.Expect(st, proto.TypeTransferOpen, &open); err != nil {
		return
	}
	m := meter{Meter: t.progress.Start(open.Tool, open.Path), write: open.Op != proto.OpRead}
	defer m.Done()
	if t.announce {
		m.opened = func(size int64) { t.notice("%s", announcement(open, size)) }
	}
	var err error
	switch open.Op {
	case proto.OpRead:
		err = cat.ServeRead(t.ctx, st, open, t.dirs, m)
	case proto.OpWrite, proto.OpAppend:
		err = tee.ServeWrite(t.ctx, st, open, t.dirs, m)
	default:
		_ = proto.WriteMessage(st, proto.TypeTransferReply, proto.TransferReply{Error: fmt.Sprintf("unknown transfer operation %q", open.Op)})
		return
	}
	tool := "lcat"
	if open.Op != proto.OpRead {
		tool = "ltee"
	}
	var refused *access.Error
	var stopped *cat.StoppedError
	var inc *tee.IncompleteError
	switch {
	case errors.As(err, &inc):
		m.Done()
		t.notice("ltee: %s", inc.Message())
	case errors.As(err, &refused) && t.announce:
		t.notice("%s: %v", tool, refused)
	case errors.As(err, &stopped) && t.r.o.Verbose:
		m.Done()
		t.notice("lcat: %s: stopped after %d bytes: the reader went away", stopped.Path, stopped.Sent)
	}
}

// announcement says what a transfer does: "lcat: reading data.csv
// (12.0 MiB)", "ltee: writing out.txt".
func announcement(open proto.TransferOpen, size int64) string {
	switch {
	case open.Op == proto.OpRead && size >= 0:
		return fmt.Sprintf("lcat: reading %s (%s)", open.Path, formatBytes(float64(size)))
	case open.Op == proto.OpRead:
		return fmt.Sprintf("lcat: reading %s", open.Path)
	case open.Op == proto.OpAppend:
		return fmt.Sprintf("ltee: appending to %s", open.Path)
	}
	return fmt.Sprintf("ltee: writing %s", open.Path)
}
