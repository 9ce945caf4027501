package cluster

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// JobConn is the master's end of one job on one executor (spec.md §8): a
// stream of the executor's link, or the in-process executor's job.
type JobConn interface {
	// Next blocks for the next output chunk (out != nil) or the end (end
	// != nil; after it Next returns io.EOF). ErrJobLost when the stream or
	// the link broke: the executor may still hold the job (re-attach it
	// with ResumeJob when it joins again).
	Next() (out *JobOutput, end *JobEnd, err error)
	// Ack tells the executor that the store has the output up to these
	// lengths: it may drop those bytes.
	Ack(stdout, stderr int64) error
	// Cancel asks the executor to kill the job; its end follows.
	Cancel(reason string) error
	// Release says that the end is stored: the executor forgets the job.
	// It closes the JobConn.
	Release() error
	// Close abandons this end; the executor keeps holding the job.
	Close() error
	// Executor names the executor.
	Executor() string
}

// Errors of jobs on executors.
var (
	// ErrJobLost: the stream of a job, or its executor's link, broke; the
	// executor may still hold the job.
	ErrJobLost = errors.New("cluster: the job's executor link is lost")
	// ErrUnknownJob: the executor does not hold the job under that lease
	// (it refused a JobResume with "unknown").
	ErrUnknownJob = errors.New("cluster: the executor does not hold that job under that lease")
	// ErrJobGap: a job's output was asked from an offset below what the
	// master acknowledged, which the executor dropped.
	ErrJobGap = errors.New("cluster: the job's output before that offset was already dropped")
	// ErrNoRoom: RunJob found no executor that has room for the job now.
	ErrNoRoom = errors.New("cluster: no executor has room for the job now")
)

// Refusal reasons of jobs in Refuse.Reason, besides RefuseFull, RefuseCPU
// and RefuseLeaving.
const (
	RefuseLang    = "lang"    // no such language here, or its tools are missing
	RefuseUnknown = "unknown" // JobResume: no such held job, or under another lease
)

// RefusedError is an executor's refusal of a JobRun or a JobResume.
type RefusedError struct {
	Executor string // the executor that refused
	Reason   string // RefuseFull, RefuseCPU, RefuseLeaving, RefuseLang, RefuseUnknown
	Message  string // for the logs; may be empty
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("cluster: executor %s refused the job (%s)", e.Executor, e.Reason)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// LanguageError says that no executor known now has a language: Place
// and RunJob return it at once, rather than wait.
type LanguageError struct {
	Lang string   // the language asked for
	On   string   // the only executor the session may go to, or ""
	Have []string // the languages the executors (or On) have, sorted
}

func (e *LanguageError) Error() string {
	list := "none"
	if len(e.Have) > 0 {
		list = strings.Join(e.Have, ", ")
	}
	if e.On != "" {
		return fmt.Sprintf("reshd: executor %s has no %s (it has: %s)", e.On, e.Lang, list)
	}
	return fmt.Sprintf("reshd: no executor has the language %s (the executors have: %s)", e.Lang, list)
}

// union is the sorted union of lists.
func union(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}
