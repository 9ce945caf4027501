package lang

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJavaClass(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"public class", "public class Main { public static void main(String[] a) {} }", "Main"},
		{"public class of another name", "import java.util.*;\n\npublic class Solution {\n}\n", "Solution"},
		{"after package, imports and annotations", "package p;\nimport static java.lang.Math.*;\n@SuppressWarnings(\"unchecked\")\npublic final class Prog {}", "Prog"},
		{"public after a non-public one", "class Helper { void f() {} }\npublic class App { }", "App"},
		{"modifiers before and after public", "final public class A {}", "A"},
		{"generic", "public class Box<T extends Comparable<T>> implements Comparable<Box<T>> {}", "Box"},
		{"generic, no space", "public class Pair<A,B>{}", "Pair"},
		{"line comment", "// public class Wrong {\nclass Helper {}\npublic class Right {}", "Right"},
		{"block comment", "/* public class Wrong { } */ public class Right {}", "Right"},
		{"javadoc with braces", "/** {@code public class Wrong} */\npublic class Right {}", "Right"},
		{"string", "class A { String s = \"}public class Wrong {\"; }\npublic class Right {}", "Right"},
		{"string with escaped quote", "class A { String s = \"\\\"}public class Wrong {\"; }\npublic class Right {}", "Right"},
		{"char literals", "class A { char c = '}', d = '\\'', e = '{'; }\npublic class Right {}", "Right"},
		{"text block", "class A { String s = \"\"\"\n  }\n  public class Wrong { \\\"\"\" \"\n  \"\"\"; }\npublic class Right {}", "Right"},
		{"nested public class", "class Outer { public class Inner {} }", "Outer"},
		{"nested public class before public", "class Outer { public static class Inner {} }\npublic class Main {}", "Main"},
		{"no public class: first top-level", "class First { }\nclass Second { public static void main(String[] a) {} }", "First"},
		{"public interface", "public interface Shape { static void main(String[] a) {} }", "Shape"},
		{"public enum", "public enum Color { RED, GREEN; public static void main(String[] a) {} }", "Color"},
		{"public record", "public record Point(int x, int y) { }", "Point"},
		{"annotation with braces and class literal", "@Ann(value = {Foo.class}, x = \"class Wrong\")\npublic class Right {}", "Right"},
		{"sealed", "public sealed class Shape permits Circle {}\nfinal class Circle extends Shape {}", "Shape"},
		{"unicode name", "public class Привет {}", "Привет"},
		{"dollar and underscore", "public class $My_Class1 {}", "$My_Class1"},
		{"CRLF", "class A {}\r\npublic\r\nclass B\r\n{\r\n}\r\n", "B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := JavaClass([]byte(tc.src))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestJavaClassNone(t *testing.T) {
	for name, src := range map[string]string{
		"empty":               "",
		"only comments":       "// public class Main {}\n/* class X {} */",
		"only strings":        "\"public class X {}\"",
		"compact source file": "void main() { System.out.println(\"class X {}\"); }",
		"unclosed comment":    "/* public class X {}",
		"keyword at the end":  "public class",
	} {
		_, err := JavaClass([]byte(src))
		assert.ErrorIs(t, err, ErrNoClass, name)
	}
}

func TestJavaClassGarbage(t *testing.T) {
	// Unbalanced or broken input must not panic; whatever it finds is an
	// identifier.
	for _, src := range []string{"}}}} public class A", "\"unclosed", "'", "\"\"\"", "/*", "\xff\xfe class \xff", "class 9 x"} {
		c, err := JavaClass([]byte(src))
		if err == nil {
			assert.True(t, isJavaIdent(c), "%q gave %q", src, c)
		}
	}
}

func FuzzJavaClass(f *testing.F) {
	f.Add([]byte("public class Main {}"))
	f.Add([]byte("class A { String s = \"\"\"\n}\"\"\"; } public class B {}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := JavaClass(src)
		if err == nil && !isJavaIdent(c) {
			t.Fatalf("%q gave the class %q", src, c)
		}
	})
}
