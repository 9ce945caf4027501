// Hello-world programs, one per language: each prints its arguments and
// echoes its standard input.

export const FILENAMES = {
  python: 'main.py',
  c: 'main.c',
  cpp: 'main.cpp',
  'c++': 'main.cpp',
  java: 'Main.java',
  sh: 'main.sh',
};

export const EXTENSIONS = {
  py: 'python',
  c: 'c',
  h: 'c',
  cpp: 'cpp',
  cc: 'cpp',
  cxx: 'cpp',
  hpp: 'cpp',
  java: 'java',
  sh: 'sh',
  bash: 'sh',
};

/** The language of a file name by its extension, or null. */
export function guessLanguage(name) {
  const m = /\.([A-Za-z0-9]+)$/.exec(name || '');
  return m ? EXTENSIONS[m[1].toLowerCase()] || null : null;
}

export const TEMPLATES = {
  python: `import sys


def main():
    print("Hello, world!")
    for i, arg in enumerate(sys.argv[1:], 1):
        print(f"arg {i}: {arg}")
    for line in sys.stdin:
        print("stdin:", line.rstrip("\\n"))


if __name__ == "__main__":
    main()
`,
  c: `#include <stdio.h>

int main(int argc, char *argv[]) {
    char line[4096];

    printf("Hello, world!\\n");
    for (int i = 1; i < argc; i++)
        printf("arg %d: %s\\n", i, argv[i]);
    while (fgets(line, sizeof line, stdin) != NULL)
        printf("stdin: %s", line);
    return 0;
}
`,
  cpp: `#include <iostream>
#include <string>

int main(int argc, char *argv[]) {
    std::cout << "Hello, world!" << std::endl;
    for (int i = 1; i < argc; i++)
        std::cout << "arg " << i << ": " << argv[i] << "\\n";
    std::string line;
    while (std::getline(std::cin, line))
        std::cout << "stdin: " << line << "\\n";
    return 0;
}
`,
  java: `import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;

public class Main {
    public static void main(String[] args) throws IOException {
        System.out.println("Hello, world!");
        for (int i = 0; i < args.length; i++) {
            System.out.println("arg " + (i + 1) + ": " + args[i]);
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            System.out.println("stdin: " + line);
        }
    }
}
`,
  sh: `#!/bin/sh
# Prints its arguments, then echoes standard input.
echo "Hello, world!"
i=1
for arg in "$@"; do
    echo "arg $i: $arg"
    i=$((i + 1))
done
while IFS= read -r line; do
    echo "stdin: $line"
done
`,
};
TEMPLATES['c++'] = TEMPLATES.cpp;
