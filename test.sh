#!/usr/bin/env bash
# The project's test command (README.md): formatting, go.mod tidy, vet,
# staticcheck, the whole suite under the race detector, then a short run of
# every fuzz target.
set -euo pipefail
cd "$(dirname "$0")"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

echo "== go mod tidy"
if ! go mod tidy -diff; then
	echo "go mod tidy would change go.mod or go.sum (above)" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race"
go test -race -count=1 -shuffle=on -timeout 10m ./...

echo "== end-to-end tests again with -insecure (no TLS above the connection)"
RESH_TEST_MODE=insecure go test -race -count=1 -shuffle=on -timeout 10m ./tests

echo "== fuzz (short)"
fuzztime="${FUZZTIME:-10s}"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
echo "== all tests passed"
