package client

import "strings"

// escaper filters what the user types in an interactive session for ssh's
// escape sequences, recognised right after a newline (or at the very
// start): "~." ends the session, "~?" lists the escapes (help), "~~" sends
// one "~", and "~" followed by anything else sends both.
type escaper struct {
	help    func() // prints the list of escapes, for "~?"
	midLine bool   // the last byte forwarded was not a newline
	tilde   bool   // a "~" at the start of a line is held back
}

// escapes lists the escapes for "~?", as ssh does.
var escapes = []string{
	"Supported escape sequences:",
	" ~.   - terminate connection",
	" ~?   - this message",
	" ~~   - send the escape character by typing it twice",
	"(Note that escapes are only recognized immediately after newline.)",
}

// escapeHelp is the list of escapes with eol after each line.
func escapeHelp(eol string) string {
	return strings.Join(escapes, eol) + eol
}

// feed filters p: it returns the bytes to forward and whether "~." was
// typed (the bytes before it are returned too; those after are dropped).
func (e *escaper) feed(p []byte) (out []byte, quit bool) {
	out = make([]byte, 0, len(p))
	for _, b := range p {
		if e.tilde {
			e.tilde = false
			switch b {
			case '.':
				return out, true
			case '?':
				// Printed here, not sent; still at the start of a
				// line, so another escape may follow.
				if e.help != nil {
					e.help()
				}
				continue
			case '~':
				out = append(out, '~')
				e.midLine = true
				continue
			}
			out = append(out, '~')
		} else if !e.midLine && b == '~' {
			e.tilde = true
			continue
		}
		out = append(out, b)
		e.midLine = b != '\r' && b != '\n'
	}
	return out, false
}
