// dockerfile-lint checks Dockerfiles with BuildKit's own parser and the lint
// rules its Dockerfile frontend applies while parsing instructions (the
// checks `docker build --check` reports, minus those that need the build
// context or base images). One `file:line: Rule: message` per finding on
// stdout; exit 1 when there is any, 2 when a file cannot be parsed.
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint DOCKERFILE...")
		os.Exit(2)
	}
	findings := 0
	for _, path := range os.Args[1:] {
		n, err := lint(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		findings += n
	}
	if findings > 0 {
		os.Exit(1)
	}
}

func lint(path string) (int, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	result, err := parser.Parse(bytes.NewReader(text))
	if err != nil {
		return 0, err
	}
	findings := 0
	report := func(rule, line string) {
		findings++
		fmt.Printf("%s:%s: %s\n", path, line, rule)
	}
	for _, warning := range result.Warnings {
		report("parser", fmt.Sprintf("%d: %s", warning.Location.Start.Line, warning.Short))
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, _, _, message string, location []parser.Range) {
			line := 0
			if len(location) > 0 {
				line = location[0].Start.Line
			}
			report(rule, fmt.Sprintf("%d: %s", line, message))
		},
	})
	if _, _, err := instructions.Parse(result.AST, lint); err != nil {
		return findings, err
	}
	return findings, nil
}
