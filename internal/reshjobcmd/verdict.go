package reshjobcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"syscall"
	"unicode"

	"golang.org/x/sys/unix"

	"resh/proto"
)

// ExitStatus is reshjob's exit status for a program that ended with
// verdict v and the server's Exit e: the program's status for OK and
// RUNTIME_ERROR (128+N for signal N), the verdict's proto.Exit* code for
// the verdicts without one, Exit's code for a verdict reshjob does not
// know. CANCELLED is 128+N when a signal N from an attached client
// cancelled the job (Exit says so), 119 otherwise.
func ExitStatus(v proto.Verdict, e proto.Exit) int {
	switch v.Verdict {
	case proto.VerdictCancelled:
		if e.Signal > 0 {
			return 128 + e.Signal
		}
		return proto.ExitCancelled
	case proto.VerdictExecutorLost:
		return proto.ExitExecutorLost
	case proto.VerdictCompileError:
		return proto.ExitCompileError
	case proto.VerdictOutputLimit:
		return proto.ExitOutputLimit
	case proto.VerdictMemoryLimit:
		return proto.ExitMemoryLimit
	case proto.VerdictTimeLimit:
		return proto.ExitTimeLimit
	case proto.VerdictSandboxError:
		return proto.ExitSandboxError
	}
	switch {
	case e.Signal > 0:
		return 128 + e.Signal
	case e.Code < 0 || e.Code > 255:
		return ExitFailure
	}
	return e.Code
}

// VerdictLine is the line reshjob prints on stderr for a verdict other
// than OK, "reshjob: VERDICT (detail)" (without the newline): the detail
// is the server's, else for RUNTIME_ERROR the status or the signal; it is
// kept to one line, control characters replaced by "?".
func VerdictLine(v proto.Verdict) string {
	detail := v.Detail
	if detail == "" && v.Verdict == proto.VerdictRuntimeError {
		if v.Signal > 0 {
			detail = fmt.Sprintf("killed by signal %d, %s", v.Signal, signalName(v.Signal))
		} else {
			detail = fmt.Sprintf("exit status %d", v.Status)
		}
	}
	line := "reshjob: " + oneLine(v.Verdict)
	if detail != "" {
		line += " (" + oneLine(detail) + ")"
	}
	return line
}

// signalName is "SIGKILL" for 9, "signal N" for a number without a name.
func signalName(n int) string {
	if name := unix.SignalName(syscall.Signal(n)); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", n)
}

// oneLine is s with newlines and other control characters (from a hostile
// server, or a compiler's message) replaced, trailing space trimmed.
func oneLine(s string) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return '?'
		}
		return c
	}, strings.TrimRight(s, " \t\r\n"))
}

// Report is -json's object: how the program ended, its resources, and
// reshjob's exit status.
type Report struct {
	Verdict    string `json:"verdict"`
	Detail     string `json:"detail,omitempty"`
	Status     int    `json:"status"`
	Signal     int    `json:"signal"`
	WallMS     int64  `json:"wall_ms"`
	CPUMS      int64  `json:"cpu_ms"`
	PeakMemory int64  `json:"peak_memory"` // bytes; 0 when unknown
	Stdout     int64  `json:"stdout"`      // bytes the program wrote there
	Stderr     int64  `json:"stderr"`
	Executor   string `json:"executor"`
	Unsafe     bool   `json:"unsafe,omitempty"` // ran without the sandbox
	Exit       int    `json:"exit"`             // reshjob's exit status
}

// NewReport is the report of verdict v with reshjob's exit status code.
func NewReport(v proto.Verdict, code int) Report {
	return Report{Verdict: v.Verdict, Detail: v.Detail, Status: v.Status, Signal: v.Signal,
		WallMS: v.WallMS, CPUMS: v.CPUMS, PeakMemory: v.PeakMemory, Stdout: v.Stdout, Stderr: v.Stderr,
		Executor: v.Executor, Unsafe: v.Unsafe, Exit: code}
}

// report tells how the program ended: the verdict line on stderr unless
// OK, a warning if it ran without a sandbox, the JSON object on stdout
// with asJSON (-json); it returns reshjob's exit status.
func report(asJSON bool, v proto.Verdict, e proto.Exit, stdout, stderr io.Writer) (int, error) {
	code := ExitStatus(v, e)
	if v.Unsafe {
		fmt.Fprintln(stderr, "reshjob: warning: the program ran without a sandbox (reshd -unsafe-no-sandbox)")
	}
	if v.Verdict != proto.VerdictOK {
		fmt.Fprintln(stderr, VerdictLine(v))
	}
	if asJSON {
		b, err := json.Marshal(NewReport(v, code))
		if err != nil {
			return 0, err
		}
		if _, err := stdout.Write(append(b, '\n')); err != nil {
			return 0, fmt.Errorf("standard output: %w", err)
		}
	}
	return code, nil
}
