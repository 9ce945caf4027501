package client

// escaper filters what the user types in an interactive session for ssh's
// escape sequences: "~." right after a newline (or at the very start) ends
// the session, "~~" sends one "~", and "~" followed by anything else sends
// both.
type escaper struct {
	midLine bool // the last byte forwarded was not a newline
	tilde   bool // a "~" at the start of a line is held back
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
