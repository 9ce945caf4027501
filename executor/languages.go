package executor

import (
	"context"
	"time"

	"resh/lang"
	"resh/sandbox"
)

// detectTimeout bounds the detection of the languages at start (the
// version commands run at once, 2 s each at most).
const detectTimeout = 5 * time.Second

// Languages names the languages of set (nil: lang.Builtin) whose programs
// this machine has where jobs look for them (lang.Set.DetectIn the
// sandbox's PATH), sorted by name: what an executor, or
// a standalone reshd's in-process executor, advertises to its master.
func Languages(set *lang.Set) []string {
	if set == nil {
		set = lang.Builtin()
	}
	ctx, cancel := context.WithTimeout(context.Background(), detectTimeout)
	defer cancel()
	var names []string
	for _, d := range set.DetectIn(ctx, sandbox.DefaultPath) {
		names = append(names, d.Language.Name)
	}
	return names
}
