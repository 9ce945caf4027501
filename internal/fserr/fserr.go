// Package fserr words file system errors for users.
package fserr

import (
	"errors"
	"io/fs"
	"os"
)

// Bare is what went wrong in err without the operation and path an
// *fs.PathError or *os.LinkError repeats ("permission denied" for "open /x:
// permission denied"), so that messages name the file in the user's terms.
// errors.Is still sees through it (a syscall.Errno matches fs.ErrNotExist
// and the like).
func Bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
