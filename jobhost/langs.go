package jobhost

import (
	"resh/lang"
	"resh/sandbox"
)

// haveTools reports whether every tool l needs is in the sandbox's PATH.
func haveTools(l lang.Language) bool {
	for _, t := range l.Tools() {
		if _, err := lang.LookIn(t, sandbox.DefaultPath); err != nil {
			return false
		}
	}
	return true
}

// languagesHere names the languages of set whose tools are here.
func languagesHere(set *lang.Set) []string {
	var have []string
	for _, l := range set.All() {
		if haveTools(l) {
			have = append(have, l.Name)
		}
	}
	return have
}
