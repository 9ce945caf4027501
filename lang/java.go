package lang

import (
	"unicode"
	"unicode/utf8"
)

// JavaClass returns the class a Java program is named after: its public
// top-level class (or interface, enum, record), else its first top-level
// one. Comments, strings, text blocks and character literals are skipped,
// as are nested classes and annotations' arguments. It fails with
// ErrNoClass when the program declares no top-level type.
func JavaClass(src []byte) (string, error) {
	var (
		depth   int    // braces
		parens  int    // parentheses at depth 0 (annotations' arguments)
		public  bool   // "public" seen in the declaration being read
		prev    string // previous token
		want    bool   // the next identifier names a type
		first   string // first top-level type
		toks    = javaTokens{src: src}
		wantPub bool // the type being named is public
	)
	for {
		t, ok := toks.next()
		if !ok {
			break
		}
		switch {
		case t == "{" && parens == 0:
			depth++
			want = false
		case t == "}" && parens == 0:
			if depth > 0 {
				depth--
			}
			if depth == 0 {
				public = false
			}
		case depth > 0:
		case t == "(":
			parens++
		case t == ")":
			if parens > 0 {
				parens--
			}
		case parens > 0:
		case t == ";":
			public, want = false, false
		case want && isJavaIdent(t):
			if wantPub {
				return t, nil
			}
			if first == "" {
				first = t
			}
			want = false
		case t == "public":
			public = true
		case t == "class" || t == "interface" || t == "enum" || t == "record":
			if prev != "." {
				want, wantPub = true, public
			}
		}
		prev = t
	}
	if first == "" {
		return "", ErrNoClass
	}
	return first, nil
}

// isJavaIdent reports whether t is a Java identifier (keywords aside).
func isJavaIdent(t string) bool {
	for i, r := range t {
		if !(r == '_' || r == '$' || unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r)) {
			return false
		}
	}
	return t != ""
}

// javaTokens splits Java source into tokens: identifiers and keywords,
// single-character symbols, and `"` standing for each string, text block
// or character literal. Comments and white space are dropped; numbers
// come out as identifiers' kin and do no harm.
type javaTokens struct {
	src []byte
	i   int
}

// next returns the next token, false at the end.
func (z *javaTokens) next() (string, bool) {
	s := z.src
	for z.i < len(s) {
		c := s[z.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			z.i++
		case c == '/' && z.i+1 < len(s) && s[z.i+1] == '/':
			for z.i < len(s) && s[z.i] != '\n' {
				z.i++
			}
		case c == '/' && z.i+1 < len(s) && s[z.i+1] == '*':
			z.i += 2
			for z.i < len(s) && !(s[z.i] == '*' && z.i+1 < len(s) && s[z.i+1] == '/') {
				z.i++
			}
			z.i += 2
		case c == '"' && z.i+2 < len(s) && s[z.i+1] == '"' && s[z.i+2] == '"':
			z.i += 3
			for z.i < len(s) && !(s[z.i] == '"' && z.i+2 < len(s) && s[z.i+1] == '"' && s[z.i+2] == '"') {
				if s[z.i] == '\\' {
					z.i++
				}
				z.i++
			}
			z.i += 3
			return `"`, true
		case c == '"' || c == '\'':
			z.i++
			for z.i < len(s) && s[z.i] != c && s[z.i] != '\n' {
				if s[z.i] == '\\' {
					z.i++
				}
				z.i++
			}
			z.i++
			return `"`, true
		default:
			r, n := utf8.DecodeRune(s[z.i:])
			if !isIdentRune(r) {
				z.i += n
				return string(s[z.i-n : z.i]), true
			}
			start := z.i
			for z.i < len(s) {
				r, n := utf8.DecodeRune(s[z.i:])
				if !isIdentRune(r) {
					break
				}
				z.i += n
			}
			return string(s[start:z.i]), true
		}
	}
	return "", false
}

// isIdentRune reports whether r may be part of an identifier (or number).
func isIdentRune(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}
