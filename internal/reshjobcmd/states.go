package reshjobcmd

import (
	"fmt"
	"io"
	"time"

	"resh/proto"
)

// queuedNotice is how long a job stays queued before reshjob says so on
// a terminal without -v.
const queuedNotice = time.Second

// stateLine tells where an attached job is (JobState) on stderr:
// "reshjob: job 42 queued", "reshjob: job 42 running on NAME". With -v,
// every change; otherwise, on a terminal only, once the job has been
// queued for delay (queuedNotice), and then where it runs.
type stateLine struct {
	w       func() io.Writer // reshjob's stderr now
	id      int64
	verbose bool
	term    bool
	delay   time.Duration

	last   proto.JobState
	shown  bool        // a line was shown for the current wait (not verbose)
	timer  *time.Timer // runs while queued (not verbose)
	notice <-chan time.Time
}

// show takes a JobState.
func (l *stateLine) show(st proto.JobState) {
	if st == l.last {
		return
	}
	l.last = st
	switch {
	case l.verbose:
		l.print(st)
	case !l.term:
	case st.State == "queued":
		l.shown = false
		l.stop()
		l.timer = time.NewTimer(l.delay)
		l.notice = l.timer.C
	default:
		l.stop()
		if l.shown {
			l.print(st)
		}
	}
}

// late is called when notice fires: the job is still queued.
func (l *stateLine) late() {
	l.notice = nil
	if l.last.State == "queued" && !l.shown {
		l.shown = true
		l.print(l.last)
	}
}

// stop stops the timer.
func (l *stateLine) stop() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer, l.notice = nil, nil
	}
}

// print writes the line for st.
func (l *stateLine) print(st proto.JobState) {
	fmt.Fprintln(l.w(), StateText(l.id, st))
}

// StateText is the line telling that job id is in state st.
func StateText(id int64, st proto.JobState) string {
	s := fmt.Sprintf("reshjob: job %d %s", id, oneLine(st.State))
	if st.Executor != "" {
		s += " on " + oneLine(st.Executor)
	}
	if st.Attempt > 1 {
		s += fmt.Sprintf(" (attempt %d)", st.Attempt)
	}
	return s
}
