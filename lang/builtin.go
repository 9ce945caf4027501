package lang

// builtin are the built-in languages, by name: the names executors have
// always advertised.
var builtin = []Language{
	{
		Name:       "c",
		Extensions: []string{".c"},
		Source:     "main.c",
		Compile:    []string{"gcc", "-std=c17", "-O2", "-o", "main", "{source}", "-lm"},
		Run:        []string{"./main"},
		Version:    []string{"gcc", "--version"},
	},
	{
		Name:       "c++",
		Extensions: []string{".cpp", ".cc"},
		Source:     "main.cpp",
		Compile:    []string{"g++", "-std=c++17", "-O2", "-o", "main", "{source}"},
		Run:        []string{"./main"},
		Version:    []string{"g++", "--version"},
	},
	{
		Name:       "java",
		Extensions: []string{".java"},
		Source:     "{class}.java",
		Compile:    []string{"javac", "-encoding", "UTF-8", "{source}"},
		Run:        []string{"java", "-cp", ".", "{class}"},
		Version:    []string{"javac", "-version"},
	},
	{
		Name:       "python",
		Extensions: []string{".py"},
		Source:     "main.py",
		Run:        []string{"python3", "{source}"},
		Version:    []string{"python3", "--version"},
	},
	{
		Name:       "sh",
		Extensions: []string{".sh"},
		Source:     "main.sh",
		Run:        []string{"sh", "{source}"},
		// sh (dash) has no version option.
	},
}

// Builtin returns the built-in languages: c (.c: gcc -std=c17 -O2 ...
// -lm), c++ (.cpp, .cc: g++ -std=c++17 -O2), java (.java: javac then java
// -cp . CLASS, the file named after the program's class), python (.py:
// python3) and sh (.sh: sh).
func Builtin() *Set { return newSet(builtin) }
